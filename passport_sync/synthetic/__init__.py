"""Synthetic OpenMRS hospitals and Patient Passport patients, for the demo, the tests and the
benchmark. Nothing here is imported by the sync itself.

- ``schema``: the OpenMRS schema fixture (``load_openmrs_schema``, the .sql resources);
- ``builder``: ``OpenMRSBuilder``, rows one at a time the way OpenMRS writes them;
- ``population``, ``hospital``: a seeded population and hospitals filled at scale;
- ``registration``: patients registered in Patient Passport the way the app stores them;
- ``mysql``: the server given as ``mysql://user:password@host:port``;
- ``mongodb``: the embedded MongoDB (SecantusDB, the ``demo`` extra);
- ``counting``: a sync with its round trips counted through ``passport_sync.tracing``;
- ``proxy``: a TCP proxy adding a WAN round trip (the fleet benchmark).
"""
