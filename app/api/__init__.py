"""The HTTP API: one blueprint per resource; views validate with schemas and call services."""
