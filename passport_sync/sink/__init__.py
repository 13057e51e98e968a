"""Writing Patient Passport: the one module that talks to pymongo (passport)."""
