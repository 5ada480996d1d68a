"""Storage plugins: the interfaces (``base``), the handler that builds them from settings
(``handler``), and one module per backend."""
