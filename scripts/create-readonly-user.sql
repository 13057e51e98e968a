-- passport-sync: a SELECT-only database user for one hospital's OpenMRS database, and the
-- indexes the sync's queries need.
--
-- Run it as an administrator of the OpenMRS database (a user allowed to CREATE USER and
-- ALTER/INDEX the obs and patient_identifier tables: root, or the OpenMRS application user plus
-- an administrator for the user part), never as the read-only user it creates:
--   mysql -u root -p < scripts/create-readonly-user.sql
--
-- Before running it, adjust:
--   * the database name: `USE openmrs;` below and `openmrs.*` in the GRANT;
--   * the password 'change-me': a long random one, e.g. from `openssl rand -base64 24`; then give
--     it to passport-sync through db.password_file (see systemd/passport-sync.service);
--   * the host '%' (anywhere): restrict it to the machine that runs passport-sync, e.g.
--     'passport_sync'@'10.0.0.15' (in both statements).
--
-- Written for MariaDB 10.5+ (CREATE INDEX IF NOT EXISTS). MySQL 8 has no IF NOT EXISTS for
-- indexes: there, drop "IF NOT EXISTS" from the CREATE INDEX statements and skip the ones
-- whose index already exists (the statement fails with error 1061 "Duplicate key name").
-- Safe to run again on MariaDB.

USE openmrs;

-- The read-only user --------------------------------------------------------------------------

CREATE USER IF NOT EXISTS 'passport_sync'@'%' IDENTIFIED BY 'change-me';
GRANT SELECT ON openmrs.* TO 'passport_sync'@'%';

-- Indexes -------------------------------------------------------------------------------------
-- Creating an index on a large obs table takes a while; MariaDB builds it online (reads and
-- writes continue), but prefer a quiet hour and check the free disk space first.

-- Voided observations are read by date_voided on every run; stock OpenMRS has no such index,
-- so without it every run scans the whole obs table.
CREATE INDEX IF NOT EXISTS idx_obs_date_voided ON obs (date_voided);

-- Observations by creation date, for checking the sync by hand ("what was entered today?");
-- the sync itself pages by obs_id, the primary key. Not in stock OpenMRS either.
CREATE INDEX IF NOT EXISTS idx_obs_date_created ON obs (date_created);

-- The voided flag (the void scan itself is served by idx_obs_date_voided).
CREATE INDEX IF NOT EXISTS idx_obs_voided ON obs (voided);

-- Observations of a patient (sync-patient) and patients by national ID. Stock OpenMRS already
-- indexes both columns (obs.person_obs, patient_identifier.identifier_name): these two create
-- an index only where no index starts with the column yet, since a second copy would only slow
-- down OpenMRS's writes. (Works on MySQL 8 as well.)
SET @ddl = IF(
  EXISTS (SELECT 1 FROM information_schema.STATISTICS
           WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'obs'
             AND COLUMN_NAME = 'person_id' AND SEQ_IN_INDEX = 1),
  'DO 0',
  'CREATE INDEX idx_obs_person_id ON obs (person_id)');
PREPARE create_index FROM @ddl;
EXECUTE create_index;
DEALLOCATE PREPARE create_index;

SET @ddl = IF(
  EXISTS (SELECT 1 FROM information_schema.STATISTICS
           WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'patient_identifier'
             AND COLUMN_NAME = 'identifier' AND SEQ_IN_INDEX = 1),
  'DO 0',
  'CREATE INDEX idx_patient_identifier ON patient_identifier (identifier)');
PREPARE create_index FROM @ddl;
EXECUTE create_index;
DEALLOCATE PREPARE create_index;
