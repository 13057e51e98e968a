"""Reading OpenMRS: SQL text (queries) and the one module that talks to pymysql (openmrs)."""
