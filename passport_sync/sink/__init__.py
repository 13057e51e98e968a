"""Writing Patient Passport: the only package that talks to pymongo (``passport.PassportStore``
over ``gateway.MongoGateway``, one module per concern)."""
