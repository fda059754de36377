"""The app's pages: one script each, defining ``page()`` and calling it when run as the page."""
