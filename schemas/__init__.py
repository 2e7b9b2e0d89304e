"""JSON Schemas for the formats provenance defines (installed as ``provenance._schemas``)."""
