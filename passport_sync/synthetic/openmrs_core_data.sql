-- passport-sync demo fixture: the reference rows a fresh OpenMRS Platform 2.x database
-- ships with, for the tables in openmrs_schema.sql. Ids, names and uuids are the real
-- ones (openmrs-core core-data snapshot for 2.6.x), so code under test can be written
-- against them. Load after openmrs_schema.sql.
--
-- Not shipped by core but present in every real deployment, and added here:
-- the global properties concept.true, concept.false and default_locale.
--
-- Passwords and salts are left NULL. Nothing here contains a semicolon except the
-- statement terminators.

SET NAMES utf8mb4;

SET FOREIGN_KEY_CHECKS = 0;

-- Person 1 is the super user behind both the admin and the daemon account.
INSERT INTO `person` (`person_id`, `gender`, `creator`, `date_created`, `uuid`)
VALUES (1, 'M', NULL, '2005-01-01 00:00:00', '5f87c042-6814-11e8-923f-e9a88dcb533f');

INSERT INTO `person_name`
  (`person_name_id`, `preferred`, `person_id`, `given_name`, `middle_name`, `family_name`,
   `creator`, `date_created`, `uuid`)
VALUES (1, 1, 1, 'Super', '', 'User', 1, '2005-01-01 00:00:00', '5f897a68-6814-11e8-923f-e9a88dcb533f');

-- The daemon uuid really is upper case.
INSERT INTO `users`
  (`user_id`, `system_id`, `username`, `creator`, `date_created`, `changed_by`, `date_changed`,
   `person_id`, `uuid`)
VALUES
  (1, 'admin', '', 1, '2005-01-01 00:00:00', 1, '2023-10-29 21:39:44', 1,
   '82f18b44-6814-11e8-923f-e9a88dcb533f'),
  (2, 'daemon', 'daemon', 1, '2010-04-26 13:25:00', NULL, NULL, 1,
   'A4F30A1B-5EB9-11DF-A648-37A07F9C90FB');

INSERT INTO `concept_class` (`concept_class_id`, `name`, `description`, `creator`, `date_created`, `uuid`)
VALUES
  (1, 'Test', 'Acq. during patient encounter (vitals, labs, etc.)', 1, '2004-02-02 00:00:00',
   '8d4907b2-c2cc-11de-8d13-0010c6dffd0f'),
  (2, 'Procedure', 'Describes a clinical procedure', 1, '2004-03-02 00:00:00',
   '8d490bf4-c2cc-11de-8d13-0010c6dffd0f'),
  (3, 'Drug', 'Drug', 1, '2004-02-02 00:00:00',
   '8d490dfc-c2cc-11de-8d13-0010c6dffd0f'),
  (4, 'Diagnosis', 'Conclusion drawn through findings', 1, '2004-02-02 00:00:00',
   '8d4918b0-c2cc-11de-8d13-0010c6dffd0f'),
  (5, 'Finding', 'Practitioner observation/finding', 1, '2004-03-02 00:00:00',
   '8d491a9a-c2cc-11de-8d13-0010c6dffd0f'),
  (6, 'Anatomy', 'Anatomic sites / descriptors', 1, '2004-03-02 00:00:00',
   '8d491c7a-c2cc-11de-8d13-0010c6dffd0f'),
  (7, 'Question', 'Question (eg, patient history, SF36 items)', 1, '2004-03-02 00:00:00',
   '8d491e50-c2cc-11de-8d13-0010c6dffd0f'),
  (8, 'LabSet', 'Term to describe laboratory sets', 1, '2004-03-02 00:00:00',
   '8d492026-c2cc-11de-8d13-0010c6dffd0f'),
  (9, 'MedSet', 'Term to describe medication sets', 1, '2004-02-02 00:00:00',
   '8d4923b4-c2cc-11de-8d13-0010c6dffd0f'),
  (10, 'ConvSet', 'Term to describe convenience sets', 1, '2004-03-02 00:00:00',
   '8d492594-c2cc-11de-8d13-0010c6dffd0f'),
  (11, 'Misc', 'Terms which don''t fit other categories', 1, '2004-03-02 00:00:00',
   '8d492774-c2cc-11de-8d13-0010c6dffd0f'),
  (12, 'Symptom', 'Patient-reported observation', 1, '2004-10-04 00:00:00',
   '8d492954-c2cc-11de-8d13-0010c6dffd0f'),
  (13, 'Symptom/Finding', 'Observation that can be reported from patient or found on exam', 1,
   '2004-10-04 00:00:00', '8d492b2a-c2cc-11de-8d13-0010c6dffd0f'),
  (14, 'Specimen', 'Body or fluid specimen', 1, '2004-12-02 00:00:00',
   '8d492d0a-c2cc-11de-8d13-0010c6dffd0f'),
  (15, 'Misc Order', 'Orderable items which aren''t tests or drugs', 1, '2005-02-17 00:00:00',
   '8d492ee0-c2cc-11de-8d13-0010c6dffd0f'),
  (16, 'Frequency', 'A class for order frequencies', 1, '2014-03-06 00:00:00',
   '8e071bfe-520c-44c0-a89b-538e9129b42a');

-- There is no datatype 9.
INSERT INTO `concept_datatype`
  (`concept_datatype_id`, `name`, `hl7_abbreviation`, `description`, `creator`, `date_created`, `uuid`)
VALUES
  (1, 'Numeric', 'NM', 'Numeric value, including integer or float (e.g., creatinine, weight)', 1,
   '2004-02-02 00:00:00', '8d4a4488-c2cc-11de-8d13-0010c6dffd0f'),
  (2, 'Coded', 'CWE', 'Value determined by term dictionary lookup (i.e., term identifier)', 1,
   '2004-02-02 00:00:00', '8d4a48b6-c2cc-11de-8d13-0010c6dffd0f'),
  (3, 'Text', 'ST', 'Free text', 1, '2004-02-02 00:00:00',
   '8d4a4ab4-c2cc-11de-8d13-0010c6dffd0f'),
  (4, 'N/A', 'ZZ', 'Not associated with a datatype (e.g., term answers, sets)', 1,
   '2004-02-02 00:00:00', '8d4a4c94-c2cc-11de-8d13-0010c6dffd0f'),
  (5, 'Document', 'RP',
   'Pointer to a binary or text-based document (e.g., clinical document, RTF, XML, EKG, image, etc.) stored in complex_obs table',
   1, '2004-04-15 00:00:00', '8d4a4e74-c2cc-11de-8d13-0010c6dffd0f'),
  (6, 'Date', 'DT', 'Absolute date', 1, '2004-07-22 00:00:00',
   '8d4a505e-c2cc-11de-8d13-0010c6dffd0f'),
  (7, 'Time', 'TM', 'Absolute time of day', 1, '2004-07-22 00:00:00',
   '8d4a591e-c2cc-11de-8d13-0010c6dffd0f'),
  (8, 'Datetime', 'TS', 'Absolute date and time', 1, '2004-07-22 00:00:00',
   '8d4a5af4-c2cc-11de-8d13-0010c6dffd0f'),
  (10, 'Boolean', 'BIT', 'Boolean value (yes/no, true/false)', 1, '2004-08-26 00:00:00',
   '8d4a5cca-c2cc-11de-8d13-0010c6dffd0f'),
  (11, 'Rule', 'ZZ', 'Value derived from other data', 1, '2006-09-11 00:00:00',
   '8d4a5e96-c2cc-11de-8d13-0010c6dffd0f'),
  (12, 'Structured Numeric', 'SN', 'Complex numeric values possible (ie, <5, 1-10, etc.)', 1,
   '2005-08-06 00:00:00', '8d4a606c-c2cc-11de-8d13-0010c6dffd0f'),
  (13, 'Complex', 'ED', 'Complex value.  Analogous to HL7 Embedded Datatype', 1,
   '2008-05-28 12:25:34', '8d4a6242-c2cc-11de-8d13-0010c6dffd0f');

-- The boolean answers: concept 1 (True/Yes) and concept 2 (False/No), datatype N/A,
-- class Misc.
INSERT INTO `concept`
  (`concept_id`, `short_name`, `description`, `datatype_id`, `class_id`, `is_set`, `creator`,
   `date_created`, `uuid`)
VALUES
  (1, '', '', 4, 11, 0, 1, '2018-06-04 18:29:58', 'cf82933b-3f3f-45e7-a5ab-5d31aaee3da3'),
  (2, '', '', 4, 11, 0, 1, '2018-06-04 18:29:58', '488b58ff-64f5-4f8a-8979-fa79940b1594');

-- One FULLY_SPECIFIED preferred name in English per concept, the rest are synonyms.
INSERT INTO `concept_name`
  (`concept_name_id`, `concept_id`, `name`, `locale`, `locale_preferred`, `concept_name_type`,
   `creator`, `date_created`, `uuid`)
VALUES
  (1, 1, 'Verdadeiro', 'pt', 0, NULL, 1, '2018-06-04 18:29:58', '7561f550-ccee-43b6-bcf4-269992d6c284'),
  (2, 1, 'Sim', 'pt', 0, NULL, 1, '2018-06-04 18:29:58', '89522273-55b5-4c4a-8e0b-cc7a66f3f3aa'),
  (3, 1, 'True', 'en', 1, 'FULLY_SPECIFIED', 1, '2018-06-04 18:29:58', '111eb000-3113-4d74-9d9b-98ae5d566a98'),
  (4, 1, 'Yes', 'en', 0, NULL, 1, '2018-06-04 18:29:58', 'a31778d2-53ab-4c4b-a333-a0149d1c25c6'),
  (5, 1, 'Vero', 'it', 0, NULL, 1, '2018-06-04 18:29:58', 'a069d777-3999-4bb4-8217-d4fae1f337bc'),
  (6, 1, 'Sì', 'it', 0, NULL, 1, '2018-06-04 18:29:58', 'f16c811c-d970-4f02-be47-0c7afea9eddc'),
  (7, 1, 'Vrai', 'fr', 0, NULL, 1, '2018-06-04 18:29:58', 'bb75175c-5d1b-492a-8c38-98506e2e6b2d'),
  (8, 1, 'Oui', 'fr', 0, NULL, 1, '2018-06-04 18:29:58', 'c4c4b0f6-c80c-410b-9f48-72b683072184'),
  (9, 1, 'Verdadero', 'es', 0, NULL, 1, '2018-06-04 18:29:58', 'bf9ace2a-ff96-44fc-b529-172f5c3ac0b0'),
  (10, 1, 'Sí', 'es', 0, NULL, 1, '2018-06-04 18:29:58', 'b58d53a3-c6dd-469a-8db1-0a80dfe4c542'),
  (11, 2, 'Falso', 'pt', 0, NULL, 1, '2018-06-04 18:29:58', '2553457e-849d-4a5c-9824-2f0a9ba79461'),
  (12, 2, 'Não', 'pt', 0, NULL, 1, '2018-06-04 18:29:58', '38a0828c-c54e-4bdb-8217-defb0fdfc4b6'),
  (13, 2, 'False', 'en', 1, 'FULLY_SPECIFIED', 1, '2018-06-04 18:29:58', 'ac6d888e-dc00-4402-9a2a-576438161f96'),
  (14, 2, 'No', 'en', 0, NULL, 1, '2018-06-04 18:29:58', '17a5cdd3-a0a9-406a-b39f-5cd7e8d634c4'),
  (15, 2, 'Falso', 'it', 0, NULL, 1, '2018-06-04 18:29:58', '026e4e70-28c5-458d-8bbf-be7abaf09519'),
  (16, 2, 'No', 'it', 0, NULL, 1, '2018-06-04 18:29:58', '23851ffa-da5d-4086-8107-e0318b4d26eb'),
  (17, 2, 'Faux', 'fr', 0, NULL, 1, '2018-06-04 18:29:58', '5709a1b5-b3de-472f-bf7a-eb57c5cb7144'),
  (18, 2, 'Non', 'fr', 0, NULL, 1, '2018-06-04 18:29:58', '3990b17b-22a0-4b66-9d06-1645030e6b60'),
  (19, 2, 'Falso', 'es', 0, NULL, 1, '2018-06-04 18:29:58', 'ae3cf994-72e1-471d-9af0-96dace0b6787'),
  (20, 2, 'No', 'es', 0, NULL, 1, '2018-06-04 18:29:58', '72071f05-d7e2-4687-ac2e-c7d9809d888a');

INSERT INTO `encounter_role` (`encounter_role_id`, `name`, `description`, `creator`, `date_created`, `uuid`)
VALUES (1, 'Unknown', 'Unknown encounter role for legacy providers with no encounter role set', 1,
        '2011-08-18 14:00:00', 'a0b03050-c99b-11e0-9572-0800200c9a66');

INSERT INTO `patient_identifier_type`
  (`patient_identifier_type_id`, `name`, `description`, `format`, `check_digit`, `creator`,
   `date_created`, `required`, `validator`, `uuid`)
VALUES
  (1, 'OpenMRS Identification Number', 'Unique number used in OpenMRS', '', 1, 1,
   '2005-09-22 00:00:00', 0, 'org.openmrs.patient.impl.LuhnIdentifierValidator',
   '8d793bee-c2cc-11de-8d13-0010c6dffd0f'),
  (2, 'Old Identification Number', 'Number given out prior to the OpenMRS system (No check digit)',
   '', 0, 1, '2005-09-22 00:00:00', 0, NULL, '8d79403a-c2cc-11de-8d13-0010c6dffd0f');

INSERT INTO `location`
  (`location_id`, `name`, `address1`, `address2`, `city_village`, `state_province`, `postal_code`,
   `country`, `creator`, `date_created`, `uuid`)
VALUES (1, 'Unknown Location', '', '', '', '', '', '', 1, '2005-09-22 00:00:00',
        '8d6c993e-c2cc-11de-8d13-0010c6dffd0f');

-- Boolean obs store value_coded = the concept named by concept.true / concept.false.
INSERT INTO `global_property` (`property`, `property_value`, `description`, `uuid`)
VALUES
  ('concept.true', '1', 'Concept id of the concept defining the TRUE boolean concept',
   'af520349-bb79-45e9-9907-7d97e6cd9289'),
  ('concept.false', '2', 'Concept id of the concept defining the FALSE boolean concept',
   'b0b7ec79-ee62-4f0c-be74-4e43583c4e02'),
  ('default_locale', 'en', 'Specifies the default locale, a language code such as en or a language and country code such as en_GB',
   '94959c15-37ec-41e7-a2b8-7bb578678d21');

SET FOREIGN_KEY_CHECKS = 1;
