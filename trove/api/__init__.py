"""The REST API (DRF): serializers, filters, views and URLs."""
