"""Implementation details of provenance; nothing here is a stable API."""
