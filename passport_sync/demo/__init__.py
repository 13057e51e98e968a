"""Demo and test fixtures: an OpenMRS schema and a builder for realistic OpenMRS rows."""
