"""The dashboard served by the app at ``/ui``: server-rendered pages over the same library calls."""
