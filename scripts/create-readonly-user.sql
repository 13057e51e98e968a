-- passport-sync: the database user it reads one hospital's OpenMRS database with: SELECT on the
-- tables the sync reads and nothing else (not users, whose rows hold password hashes, salts and
-- secret answers), from the one host that runs passport-sync; and the index its void query needs.
--
-- 1. Fill in the three values below and the database name in `USE`; the script stops with an
--    error while a value is left NULL.
-- 2. Run it as an administrator of the OpenMRS database (allowed to CREATE USER, GRANT and
--    CREATE INDEX; root, typically), never as the user it creates:
--      mysql -u root -p < create-readonly-user.sql
--    (pip installs this file as share/passport-sync/scripts/create-readonly-user.sql in the
--    environment, e.g. /opt/passport-sync/share/passport-sync/scripts/.)
-- 3. Give the password to passport-sync: /etc/passport-sync/credentials/ID-db-password (root-only,
--    0600), read through db.password_file (see the README, Deployment).
--
-- Safe to run again: it creates what is missing and sets the password to the one given.
-- MariaDB 10.3 or later (FOR loops, EXECUTE IMMEDIATE); on MySQL 8 run the GRANT and
-- CREATE INDEX statements it would run by hand (the table list is below).
--
-- Of global_property (which also holds secrets such as mail.password) the user reads only the
-- rows the sync needs, through the view passport_sync_global_property this script creates.
--
-- An earlier version of this script granted SELECT on the whole database; remove that with
--   REVOKE SELECT ON openmrs.* FROM 'passport_sync'@'%';

-- The user name passport-sync connects as (db.user).
SET @sync_user = 'passport_sync';
-- The host passport-sync connects from, as MySQL sees it: an address such as '10.0.0.15' or a
-- name such as 'sync.hospital.example'. Never '%' (anywhere).
SET @sync_host = NULL;
-- A long random password, e.g. from `openssl rand -base64 24`.
SET @sync_password = NULL;

USE openmrs;

DELIMITER //
BEGIN NOT ATOMIC
  DECLARE account TEXT;
  IF @sync_host IS NULL OR @sync_password IS NULL OR @sync_user IS NULL THEN
    SIGNAL SQLSTATE '45000'
      SET MESSAGE_TEXT = 'create-readonly-user.sql: set @sync_host and @sync_password at the top of the script first';
  END IF;
  IF @sync_host = '%' OR @sync_host = '' THEN
    SIGNAL SQLSTATE '45000'
      SET MESSAGE_TEXT = 'create-readonly-user.sql: @sync_host must name the passport-sync host, not anywhere (%)';
  END IF;
  IF CHAR_LENGTH(@sync_password) < 16 THEN
    SIGNAL SQLSTATE '45000'
      SET MESSAGE_TEXT = 'create-readonly-user.sql: @sync_password is too short; use 16 characters or more';
  END IF;
  SET account = CONCAT(QUOTE(@sync_user), '@', QUOTE(@sync_host));
  EXECUTE IMMEDIATE CONCAT('CREATE USER IF NOT EXISTS ', account, ' IDENTIFIED BY ', QUOTE(@sync_password));
  EXECUTE IMMEDIATE CONCAT('ALTER USER ', account, ' IDENTIFIED BY ', QUOTE(@sync_password));

  -- The tables the sync reads (passport_sync/source/). Those of a newer OpenMRS than this one
  -- (conditions, allergy, encounter_diagnosis: Platform 2.2+) are skipped where absent.
  FOR readable IN (
    SELECT TABLE_NAME AS name FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = DATABASE()
       AND TABLE_NAME IN (
         -- readable-tables-begin
         'allergy', 'allergy_reaction', 'concept', 'concept_class', 'concept_datatype',
         'concept_name', 'concept_numeric', 'conditions', 'drug', 'drug_order', 'encounter',
         'encounter_diagnosis', 'encounter_provider', 'encounter_type', 'location', 'obs',
         'order_frequency', 'orders', 'patient', 'patient_identifier', 'patient_identifier_type',
         'person', 'person_name', 'provider'
         -- readable-tables-end
       )
  ) DO
    EXECUTE IMMEDIATE CONCAT('GRANT SELECT ON ', DATABASE(), '.`', readable.name, '` TO ', account);
  END FOR;

  -- global_property holds secrets too (mail.password, module API keys): the user reads only the
  -- properties the sync needs (passport_sync/source/queries.py, PROBED_PROPERTIES), through a view
  -- that runs with its creator's rights.
  EXECUTE IMMEDIATE CONCAT(
    'CREATE OR REPLACE SQL SECURITY DEFINER VIEW passport_sync_global_property AS',
    ' SELECT property, property_value FROM global_property WHERE property IN (',
    -- global-properties-begin
    '''concept.true'', ''concept.false'', ''default_locale''',
    -- global-properties-end
    ')');
  EXECUTE IMMEDIATE CONCAT('GRANT SELECT ON ', DATABASE(), '.passport_sync_global_property TO ', account);
  -- An earlier version of this script granted the whole table: take that back (1147: no such grant).
  BEGIN
    DECLARE CONTINUE HANDLER FOR 1147 BEGIN END;
    EXECUTE IMMEDIATE CONCAT('REVOKE SELECT ON ', DATABASE(), '.global_property FROM ', account);
  END;

  -- The index the sync needs: voided observations are read by date_voided on every run, and
  -- stock OpenMRS has no index on it (without it, every run scans the whole obs table).
  -- MariaDB builds it online; on a large obs table prefer a quiet hour and check the disk.
  CREATE INDEX IF NOT EXISTS idx_obs_date_voided ON obs (date_voided);

  -- A patient's observations (sync-patient) and patients by national ID: stock OpenMRS indexes
  -- both already (obs.person_obs, patient_identifier.identifier_name); created only where no
  -- index starts with the column, since a second copy only slows OpenMRS's writes.
  IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
                  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'obs'
                    AND COLUMN_NAME = 'person_id' AND SEQ_IN_INDEX = 1) THEN
    CREATE INDEX idx_obs_person_id ON obs (person_id);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
                  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'patient_identifier'
                    AND COLUMN_NAME = 'identifier' AND SEQ_IN_INDEX = 1) THEN
    CREATE INDEX idx_patient_identifier ON patient_identifier (identifier);
  END IF;
END //
DELIMITER ;
