"""passport-sync: copies OpenMRS observations into the Patient Passport MongoDB."""

__version__ = "0.1.0"
