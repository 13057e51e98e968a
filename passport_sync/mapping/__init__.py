"""Pure mapping from OpenMRS rows to Patient Passport documents: no I/O in this package."""
