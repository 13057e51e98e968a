"""Pure mapping from OpenMRS rows to Patient Passport documents: no I/O in this package."""

# How records are rendered from their OpenMRS rows. Every record stores the version it was written
# with (``openmrsData.renderVersion``); records of an older version are re-read from OpenMRS and
# rewritten once. Bump it whenever a change alters what an existing record should show.
RENDER_VERSION = 4
