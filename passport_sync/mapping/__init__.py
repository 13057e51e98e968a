"""Pure mapping from OpenMRS rows to Patient Passport documents: no I/O in this package."""

# The version of how records are rendered from OpenMRS rows, written into every synced record as
# ``openmrsData.renderVersion``. Raise it whenever a change to the mapping alters what an existing
# record should hold: the next sync-all re-reads records of a lower (or no) version from OpenMRS
# by their primary key and rewrites their OpenMRS-owned fields, a bounded number per run.
RENDER_VERSION = 1
