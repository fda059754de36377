"""The app's pages, one module each, each with a ``page()`` function."""
