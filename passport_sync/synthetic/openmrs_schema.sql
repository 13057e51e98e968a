-- passport-sync demo fixture: the OpenMRS Platform 2.6 tables that passport-sync reads.
--
-- Column names, types, nullability and defaults follow the OpenMRS 2.6 data model
-- (openmrs-core Liquibase schema snapshot for 2.6.x). Booleans are TINYINT(1) as OpenMRS
-- creates them on MySQL/MariaDB, datetimes are DATETIME without fractions or time zone.
-- Unique keys and foreign keys are the real ones. Index names are not stable across real
-- installs, so nothing in passport-sync may depend on them.
--
-- Foreign keys pointing at tables that are not part of this fixture are left out:
-- patient_identifier.patient_program_id, encounter.form_id, encounter_type privileges,
-- visit.visit_type_id, orders.care_setting / order_type_id / order_group_id and
-- drug_order.frequency keep their index but have no constraint.
--
-- Older platform versions (2.2, 2.4) are derived from this file by ALTER statements in
-- passport_sync.synthetic.schema.
--
-- Loading rules: every statement ends with a semicolon at the end of a line, and
-- comments and string literals never contain that character. Tables are created in dependency order, but the loader also
-- switches FOREIGN_KEY_CHECKS off because users and person reference each other.

SET NAMES utf8mb4;

SET FOREIGN_KEY_CHECKS = 0;

DROP TABLE IF EXISTS
  `global_property`, `allergy_reaction`, `allergy`, `order_frequency`, `encounter_diagnosis`, `conditions`, `obs`, `drug_order`,
  `orders`, `drug`, `encounter_provider`, `encounter`, `visit`, `encounter_type`,
  `encounter_role`, `provider`, `patient_identifier`, `patient_identifier_type`, `patient`,
  `location`, `concept_numeric`, `concept_name`, `concept`, `concept_datatype`,
  `concept_class`, `person_name`, `users`, `person`;

-- ---------------------------------------------------------------------------
-- People and accounts
-- ---------------------------------------------------------------------------

CREATE TABLE `person` (
  `person_id` INT NOT NULL AUTO_INCREMENT,
  `gender` VARCHAR(50) NULL,
  `birthdate` DATE NULL,
  `birthdate_estimated` TINYINT(1) NOT NULL DEFAULT 0,
  `dead` TINYINT(1) NOT NULL DEFAULT 0,
  `death_date` DATETIME NULL,
  `cause_of_death` INT NULL,
  `creator` INT NULL,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `deathdate_estimated` TINYINT(1) NOT NULL DEFAULT 0,
  `birthtime` TIME NULL,
  `cause_of_death_non_coded` VARCHAR(255) NULL,
  PRIMARY KEY (`person_id`),
  UNIQUE KEY `uuid` (`uuid`),
  KEY `person_birthdate` (`birthdate`),
  KEY `person_death_date` (`death_date`),
  KEY `person_died_because` (`cause_of_death`),
  KEY `user_who_changed_person` (`changed_by`),
  KEY `user_who_created_person` (`creator`),
  KEY `user_who_voided_person` (`voided_by`),
  CONSTRAINT `person_died_because` FOREIGN KEY (`cause_of_death`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `user_who_changed_person` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_created_person` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_voided_person` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- users.uuid has no unique key, neither in OpenMRS nor in real dumps.
CREATE TABLE `users` (
  `user_id` INT NOT NULL AUTO_INCREMENT,
  `system_id` VARCHAR(50) NOT NULL,
  `username` VARCHAR(50) NULL,
  `password` VARCHAR(128) NULL,
  `salt` VARCHAR(128) NULL,
  `secret_question` VARCHAR(255) NULL,
  `secret_answer` VARCHAR(255) NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `person_id` INT NOT NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `activation_key` VARCHAR(255) NULL,
  `email` VARCHAR(255) NULL,
  PRIMARY KEY (`user_id`),
  UNIQUE KEY `email` (`email`),
  KEY `person_id_for_user` (`person_id`),
  KEY `user_creator` (`creator`),
  KEY `user_who_changed_user` (`changed_by`),
  KEY `user_who_retired_this_user` (`retired_by`),
  CONSTRAINT `person_id_for_user` FOREIGN KEY (`person_id`) REFERENCES `person` (`person_id`),
  CONSTRAINT `user_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_changed_user` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`) ON DELETE CASCADE,
  CONSTRAINT `user_who_retired_this_user` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `person_name` (
  `person_name_id` INT NOT NULL AUTO_INCREMENT,
  `preferred` TINYINT(1) NOT NULL DEFAULT 0,
  `person_id` INT NOT NULL,
  `prefix` VARCHAR(50) NULL,
  `given_name` VARCHAR(50) NULL,
  `middle_name` VARCHAR(50) NULL,
  `family_name_prefix` VARCHAR(50) NULL,
  `family_name` VARCHAR(50) NULL,
  `family_name2` VARCHAR(50) NULL,
  `family_name_suffix` VARCHAR(50) NULL,
  `degree` VARCHAR(50) NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`person_name_id`),
  UNIQUE KEY `uuid_person_name` (`uuid`),
  KEY `family_name2` (`family_name2`),
  KEY `first_name` (`given_name`),
  KEY `last_name` (`family_name`),
  KEY `middle_name` (`middle_name`),
  KEY `name_for_person` (`person_id`),
  KEY `user_who_made_name` (`creator`),
  KEY `user_who_voided_name` (`voided_by`),
  CONSTRAINT `name_for_person` FOREIGN KEY (`person_id`) REFERENCES `person` (`person_id`) ON UPDATE CASCADE,
  CONSTRAINT `user_who_made_name` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_voided_name` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Concept dictionary
-- ---------------------------------------------------------------------------

CREATE TABLE `concept_class` (
  `concept_class_id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(255) NOT NULL,
  `description` VARCHAR(255) NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `date_changed` DATETIME NULL,
  `changed_by` INT NULL,
  PRIMARY KEY (`concept_class_id`),
  UNIQUE KEY `uuid_concept_class` (`uuid`),
  KEY `concept_class_changed_by` (`changed_by`),
  KEY `concept_class_creator` (`creator`),
  KEY `concept_class_name_index` (`name`),
  KEY `concept_class_retired_status` (`retired`),
  KEY `user_who_retired_concept_class` (`retired_by`),
  CONSTRAINT `concept_class_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `concept_class_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_retired_concept_class` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `concept_datatype` (
  `concept_datatype_id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(255) NOT NULL,
  `hl7_abbreviation` VARCHAR(3) NULL,
  `description` VARCHAR(255) NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`concept_datatype_id`),
  UNIQUE KEY `uuid_concept_datatype` (`uuid`),
  KEY `concept_datatype_creator` (`creator`),
  KEY `concept_datatype_name_index` (`name`),
  KEY `concept_datatype_retired_status` (`retired`),
  KEY `user_who_retired_concept_datatype` (`retired_by`),
  CONSTRAINT `concept_datatype_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_retired_concept_datatype` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `concept` (
  `concept_id` INT NOT NULL AUTO_INCREMENT,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `short_name` VARCHAR(255) NULL,
  `description` TEXT NULL,
  `form_text` TEXT NULL,
  `datatype_id` INT NOT NULL DEFAULT 0,
  `class_id` INT NOT NULL DEFAULT 0,
  `is_set` TINYINT(1) NOT NULL DEFAULT 0,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `version` VARCHAR(50) NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`concept_id`),
  UNIQUE KEY `uuid_concept` (`uuid`),
  KEY `concept_classes` (`class_id`),
  KEY `concept_creator` (`creator`),
  KEY `concept_datatypes` (`datatype_id`),
  KEY `user_who_changed_concept` (`changed_by`),
  KEY `user_who_retired_concept` (`retired_by`),
  CONSTRAINT `concept_classes` FOREIGN KEY (`class_id`) REFERENCES `concept_class` (`concept_class_id`),
  CONSTRAINT `concept_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `concept_datatypes` FOREIGN KEY (`datatype_id`) REFERENCES `concept_datatype` (`concept_datatype_id`),
  CONSTRAINT `user_who_changed_concept` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_retired_concept` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- concept_name_type: FULLY_SPECIFIED, SHORT, INDEX_TERM, or NULL for a synonym.
CREATE TABLE `concept_name` (
  `concept_name_id` INT NOT NULL AUTO_INCREMENT,
  `concept_id` INT NULL,
  `name` VARCHAR(255) NOT NULL,
  `locale` VARCHAR(50) NOT NULL,
  `locale_preferred` TINYINT(1) NULL DEFAULT 0,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `concept_name_type` VARCHAR(50) NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `date_changed` DATETIME NULL,
  `changed_by` INT NULL,
  PRIMARY KEY (`concept_name_id`),
  UNIQUE KEY `uuid_concept_name` (`uuid`),
  KEY `concept_name_changed_by` (`changed_by`),
  KEY `name_for_concept` (`concept_id`),
  KEY `name_of_concept` (`name`),
  KEY `user_who_created_name` (`creator`),
  KEY `user_who_voided_this_name` (`voided_by`),
  CONSTRAINT `concept_name_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `name_for_concept` FOREIGN KEY (`concept_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `user_who_created_name` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_voided_this_name` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- allow_decimal was called `precise` before Platform 2.2.
CREATE TABLE `concept_numeric` (
  `concept_id` INT NOT NULL DEFAULT 0,
  `hi_absolute` DOUBLE NULL,
  `hi_critical` DOUBLE NULL,
  `hi_normal` DOUBLE NULL,
  `low_absolute` DOUBLE NULL,
  `low_critical` DOUBLE NULL,
  `low_normal` DOUBLE NULL,
  `units` VARCHAR(50) NULL,
  `allow_decimal` TINYINT(1) NULL DEFAULT 0,
  `display_precision` INT NULL,
  PRIMARY KEY (`concept_id`),
  CONSTRAINT `numeric_attributes` FOREIGN KEY (`concept_id`) REFERENCES `concept` (`concept_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Places and providers
-- ---------------------------------------------------------------------------

-- location_type_concept_id: Platform 2.5+.
CREATE TABLE `location` (
  `location_id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(255) NOT NULL,
  `description` VARCHAR(255) NULL,
  `address1` VARCHAR(255) NULL,
  `address2` VARCHAR(255) NULL,
  `city_village` VARCHAR(255) NULL,
  `state_province` VARCHAR(255) NULL,
  `postal_code` VARCHAR(50) NULL,
  `country` VARCHAR(50) NULL,
  `latitude` VARCHAR(50) NULL,
  `longitude` VARCHAR(50) NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `county_district` VARCHAR(255) NULL,
  `address3` VARCHAR(255) NULL,
  `address4` VARCHAR(255) NULL,
  `address5` VARCHAR(255) NULL,
  `address6` VARCHAR(255) NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `parent_location` INT NULL,
  `uuid` CHAR(38) NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `address7` VARCHAR(255) NULL,
  `address8` VARCHAR(255) NULL,
  `address9` VARCHAR(255) NULL,
  `address10` VARCHAR(255) NULL,
  `address11` VARCHAR(255) NULL,
  `address12` VARCHAR(255) NULL,
  `address13` VARCHAR(255) NULL,
  `address14` VARCHAR(255) NULL,
  `address15` VARCHAR(255) NULL,
  `location_type_concept_id` INT NULL,
  PRIMARY KEY (`location_id`),
  UNIQUE KEY `uuid_location` (`uuid`),
  KEY `location_changed_by` (`changed_by`),
  KEY `location_retired_status` (`retired`),
  KEY `location_type_fk` (`location_type_concept_id`),
  KEY `name_of_location` (`name`),
  KEY `parent_location` (`parent_location`),
  KEY `user_who_created_location` (`creator`),
  KEY `user_who_retired_location` (`retired_by`),
  CONSTRAINT `location_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `location_type_fk` FOREIGN KEY (`location_type_concept_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `parent_location` FOREIGN KEY (`parent_location`) REFERENCES `location` (`location_id`),
  CONSTRAINT `user_who_created_location` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_retired_location` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- person_id may be NULL, then `name` identifies the provider.
-- role_id and speciality_id: Platform 2.2+.
CREATE TABLE `provider` (
  `provider_id` INT NOT NULL AUTO_INCREMENT,
  `person_id` INT NULL,
  `name` VARCHAR(255) NULL,
  `identifier` VARCHAR(255) NULL,
  `creator` INT NOT NULL,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `role_id` INT NULL,
  `speciality_id` INT NULL,
  PRIMARY KEY (`provider_id`),
  UNIQUE KEY `uuid_provider` (`uuid`),
  KEY `provider_changed_by_fk` (`changed_by`),
  KEY `provider_creator_fk` (`creator`),
  KEY `provider_person_id_fk` (`person_id`),
  KEY `provider_retired_by_fk` (`retired_by`),
  KEY `provider_role_id_fk` (`role_id`),
  KEY `provider_speciality_id_fk` (`speciality_id`),
  CONSTRAINT `provider_changed_by_fk` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `provider_creator_fk` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `provider_person_id_fk` FOREIGN KEY (`person_id`) REFERENCES `person` (`person_id`),
  CONSTRAINT `provider_retired_by_fk` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `provider_role_id_fk` FOREIGN KEY (`role_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `provider_speciality_id_fk` FOREIGN KEY (`speciality_id`) REFERENCES `concept` (`concept_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Patients and identifiers
-- ---------------------------------------------------------------------------

-- patient shares its key with person and has no uuid column of its own.
CREATE TABLE `patient` (
  `patient_id` INT NOT NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `allergy_status` VARCHAR(50) NOT NULL DEFAULT 'Unknown',
  PRIMARY KEY (`patient_id`),
  KEY `user_who_changed_pat` (`changed_by`),
  KEY `user_who_created_patient` (`creator`),
  KEY `user_who_voided_patient` (`voided_by`),
  CONSTRAINT `person_id_for_patient` FOREIGN KEY (`patient_id`) REFERENCES `person` (`person_id`) ON UPDATE CASCADE,
  CONSTRAINT `user_who_changed_pat` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_created_patient` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_voided_patient` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `patient_identifier_type` (
  `patient_identifier_type_id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(50) NOT NULL,
  `description` TEXT NULL,
  `format` VARCHAR(255) NULL,
  `check_digit` TINYINT(1) NOT NULL DEFAULT 0,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `required` TINYINT(1) NOT NULL DEFAULT 0,
  `format_description` VARCHAR(255) NULL,
  `validator` VARCHAR(200) NULL,
  `location_behavior` VARCHAR(50) NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `uniqueness_behavior` VARCHAR(50) NULL,
  `date_changed` DATETIME NULL,
  `changed_by` INT NULL,
  PRIMARY KEY (`patient_identifier_type_id`),
  UNIQUE KEY `uuid_patient_identifier_type` (`uuid`),
  KEY `patient_identifier_type_changed_by` (`changed_by`),
  KEY `patient_identifier_type_retired_status` (`retired`),
  KEY `type_creator` (`creator`),
  KEY `user_who_retired_patient_identifier_type` (`retired_by`),
  CONSTRAINT `patient_identifier_type_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `type_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_retired_patient_identifier_type` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- identifier is indexed but not unique. patient_program_id: Platform 2.6+.
CREATE TABLE `patient_identifier` (
  `patient_identifier_id` INT NOT NULL AUTO_INCREMENT,
  `patient_id` INT NOT NULL DEFAULT 0,
  `identifier` VARCHAR(50) NOT NULL,
  `identifier_type` INT NOT NULL DEFAULT 0,
  `preferred` TINYINT(1) NOT NULL DEFAULT 0,
  `location_id` INT NULL DEFAULT 0,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `date_changed` DATETIME NULL,
  `changed_by` INT NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `patient_program_id` INT NULL,
  PRIMARY KEY (`patient_identifier_id`),
  UNIQUE KEY `uuid_patient_identifier` (`uuid`),
  KEY `defines_identifier_type` (`identifier_type`),
  KEY `identifier_creator` (`creator`),
  KEY `identifier_name` (`identifier`),
  KEY `identifier_voider` (`voided_by`),
  KEY `idx_patient_identifier_patient` (`patient_id`),
  KEY `patient_identifier_changed_by` (`changed_by`),
  KEY `patient_identifier_ibfk_2` (`location_id`),
  KEY `patient_identifier_program_id_fk` (`patient_program_id`),
  CONSTRAINT `defines_identifier_type` FOREIGN KEY (`identifier_type`) REFERENCES `patient_identifier_type` (`patient_identifier_type_id`),
  CONSTRAINT `fk_patient_id_patient_identifier` FOREIGN KEY (`patient_id`) REFERENCES `patient` (`patient_id`),
  CONSTRAINT `identifier_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `identifier_voider` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `patient_identifier_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `patient_identifier_ibfk_2` FOREIGN KEY (`location_id`) REFERENCES `location` (`location_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Visits and encounters
-- ---------------------------------------------------------------------------

CREATE TABLE `encounter_type` (
  `encounter_type_id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(50) NOT NULL,
  `description` TEXT NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `edit_privilege` VARCHAR(255) NULL,
  `view_privilege` VARCHAR(255) NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  PRIMARY KEY (`encounter_type_id`),
  UNIQUE KEY `encounter_type_name` (`name`),
  UNIQUE KEY `uuid_encounter_type` (`uuid`),
  KEY `encounter_type_changed_by` (`changed_by`),
  KEY `encounter_type_retired_status` (`retired`),
  KEY `privilege_which_can_edit_encounter_type` (`edit_privilege`),
  KEY `privilege_which_can_view_encounter_type` (`view_privilege`),
  KEY `user_who_created_type` (`creator`),
  KEY `user_who_retired_encounter_type` (`retired_by`),
  CONSTRAINT `encounter_type_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_created_type` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `user_who_retired_encounter_type` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `encounter_role` (
  `encounter_role_id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(255) NOT NULL,
  `description` VARCHAR(1024) NULL,
  `creator` INT NOT NULL,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`encounter_role_id`),
  UNIQUE KEY `encounter_role_name` (`name`),
  UNIQUE KEY `uuid_encounter_role` (`uuid`),
  KEY `encounter_role_changed_by_fk` (`changed_by`),
  KEY `encounter_role_creator_fk` (`creator`),
  KEY `encounter_role_retired_by_fk` (`retired_by`),
  CONSTRAINT `encounter_role_changed_by_fk` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_role_creator_fk` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_role_retired_by_fk` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `visit` (
  `visit_id` INT NOT NULL AUTO_INCREMENT,
  `patient_id` INT NOT NULL,
  `visit_type_id` INT NOT NULL,
  `date_started` DATETIME NOT NULL,
  `date_stopped` DATETIME NULL,
  `indication_concept_id` INT NULL,
  `location_id` INT NULL,
  `creator` INT NOT NULL,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`visit_id`),
  UNIQUE KEY `uuid_visit` (`uuid`),
  KEY `visit_changed_by_fk` (`changed_by`),
  KEY `visit_creator_fk` (`creator`),
  KEY `visit_indication_concept_fk` (`indication_concept_id`),
  KEY `visit_location_fk` (`location_id`),
  KEY `visit_patient_index` (`patient_id`),
  KEY `visit_type_fk` (`visit_type_id`),
  KEY `visit_voided_by_fk` (`voided_by`),
  CONSTRAINT `visit_changed_by_fk` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `visit_creator_fk` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `visit_indication_concept_fk` FOREIGN KEY (`indication_concept_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `visit_location_fk` FOREIGN KEY (`location_id`) REFERENCES `location` (`location_id`),
  CONSTRAINT `visit_patient_fk` FOREIGN KEY (`patient_id`) REFERENCES `patient` (`patient_id`),
  CONSTRAINT `visit_voided_by_fk` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `encounter` (
  `encounter_id` INT NOT NULL AUTO_INCREMENT,
  `encounter_type` INT NOT NULL,
  `patient_id` INT NOT NULL DEFAULT 0,
  `location_id` INT NULL,
  `form_id` INT NULL,
  `encounter_datetime` DATETIME NOT NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `visit_id` INT NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`encounter_id`),
  UNIQUE KEY `uuid_encounter` (`uuid`),
  KEY `encounter_changed_by` (`changed_by`),
  KEY `encounter_datetime_idx` (`encounter_datetime`),
  KEY `encounter_form` (`form_id`),
  KEY `encounter_ibfk_1` (`creator`),
  KEY `encounter_location` (`location_id`),
  KEY `encounter_patient` (`patient_id`),
  KEY `encounter_type_id` (`encounter_type`),
  KEY `encounter_visit_id_fk` (`visit_id`),
  KEY `user_who_voided_encounter` (`voided_by`),
  CONSTRAINT `encounter_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_ibfk_1` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_location` FOREIGN KEY (`location_id`) REFERENCES `location` (`location_id`),
  CONSTRAINT `encounter_patient` FOREIGN KEY (`patient_id`) REFERENCES `patient` (`patient_id`) ON UPDATE CASCADE,
  CONSTRAINT `encounter_type_id` FOREIGN KEY (`encounter_type`) REFERENCES `encounter_type` (`encounter_type_id`),
  CONSTRAINT `encounter_visit_id_fk` FOREIGN KEY (`visit_id`) REFERENCES `visit` (`visit_id`),
  CONSTRAINT `user_who_voided_encounter` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `encounter_provider` (
  `encounter_provider_id` INT NOT NULL AUTO_INCREMENT,
  `encounter_id` INT NOT NULL,
  `provider_id` INT NOT NULL,
  `encounter_role_id` INT NOT NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `date_voided` DATETIME NULL,
  `voided_by` INT NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`encounter_provider_id`),
  UNIQUE KEY `uuid_encounter_provider` (`uuid`),
  KEY `encounter_id_fk` (`encounter_id`),
  KEY `encounter_provider_changed_by` (`changed_by`),
  KEY `encounter_provider_creator` (`creator`),
  KEY `encounter_provider_voided_by` (`voided_by`),
  KEY `encounter_role_id_fk` (`encounter_role_id`),
  KEY `provider_id_fk` (`provider_id`),
  CONSTRAINT `encounter_id_fk` FOREIGN KEY (`encounter_id`) REFERENCES `encounter` (`encounter_id`),
  CONSTRAINT `encounter_provider_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_provider_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_provider_voided_by` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_role_id_fk` FOREIGN KEY (`encounter_role_id`) REFERENCES `encounter_role` (`encounter_role_id`),
  CONSTRAINT `provider_id_fk` FOREIGN KEY (`provider_id`) REFERENCES `provider` (`provider_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Drugs and orders
-- ---------------------------------------------------------------------------

-- dose_limit_units: Platform 2.3+.
CREATE TABLE `drug` (
  `drug_id` INT NOT NULL AUTO_INCREMENT,
  `concept_id` INT NOT NULL DEFAULT 0,
  `name` VARCHAR(255) NULL,
  `combination` TINYINT(1) NOT NULL DEFAULT 0,
  `dosage_form` INT NULL,
  `maximum_daily_dose` DOUBLE NULL,
  `minimum_daily_dose` DOUBLE NULL,
  `route` INT NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `strength` VARCHAR(255) NULL,
  `dose_limit_units` INT NULL,
  PRIMARY KEY (`drug_id`),
  UNIQUE KEY `uuid_drug` (`uuid`),
  KEY `dosage_form_concept` (`dosage_form`),
  KEY `drug_changed_by` (`changed_by`),
  KEY `drug_creator` (`creator`),
  KEY `drug_dose_limit_units_fk` (`dose_limit_units`),
  KEY `drug_retired_by` (`retired_by`),
  KEY `primary_drug_concept` (`concept_id`),
  KEY `route_concept` (`route`),
  CONSTRAINT `dosage_form_concept` FOREIGN KEY (`dosage_form`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `drug_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `drug_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `drug_dose_limit_units_fk` FOREIGN KEY (`dose_limit_units`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `drug_retired_by` FOREIGN KEY (`retired_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `primary_drug_concept` FOREIGN KEY (`concept_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `route_concept` FOREIGN KEY (`route`) REFERENCES `concept` (`concept_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- orders has no date_changed column before Platform 3.0.
-- fulfiller_comment and fulfiller_status: 2.2+. form_namespace_and_path: 2.5+.
CREATE TABLE `orders` (
  `order_id` INT NOT NULL AUTO_INCREMENT,
  `order_type_id` INT NOT NULL DEFAULT 0,
  `concept_id` INT NOT NULL DEFAULT 0,
  `orderer` INT NOT NULL,
  `encounter_id` INT NOT NULL,
  `instructions` TEXT NULL,
  `date_activated` DATETIME NULL,
  `auto_expire_date` DATETIME NULL,
  `date_stopped` DATETIME NULL,
  `order_reason` INT NULL,
  `order_reason_non_coded` VARCHAR(255) NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `patient_id` INT NOT NULL,
  `accession_number` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `urgency` VARCHAR(50) NOT NULL DEFAULT 'ROUTINE',
  `order_number` VARCHAR(50) NOT NULL,
  `previous_order_id` INT NULL,
  `order_action` VARCHAR(50) NOT NULL,
  `comment_to_fulfiller` VARCHAR(1024) NULL,
  `care_setting` INT NOT NULL,
  `scheduled_date` DATETIME NULL,
  `order_group_id` INT NULL,
  `sort_weight` DOUBLE NULL,
  `fulfiller_comment` VARCHAR(1024) NULL,
  `fulfiller_status` VARCHAR(50) NULL,
  `form_namespace_and_path` VARCHAR(255) NULL,
  PRIMARY KEY (`order_id`),
  UNIQUE KEY `uuid_orders` (`uuid`),
  KEY `discontinued_because` (`order_reason`),
  KEY `fk_orderer_provider` (`orderer`),
  KEY `order_creator` (`creator`),
  KEY `order_for_patient` (`patient_id`),
  KEY `orders_accession_number` (`accession_number`),
  KEY `orders_care_setting` (`care_setting`),
  KEY `orders_in_encounter` (`encounter_id`),
  KEY `orders_order_group_id_fk` (`order_group_id`),
  KEY `orders_order_number` (`order_number`),
  KEY `previous_order_id_order_id` (`previous_order_id`),
  KEY `type_of_order` (`order_type_id`),
  KEY `user_who_voided_order` (`voided_by`),
  CONSTRAINT `discontinued_because` FOREIGN KEY (`order_reason`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `fk_orderer_provider` FOREIGN KEY (`orderer`) REFERENCES `provider` (`provider_id`),
  CONSTRAINT `order_creator` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `order_for_patient` FOREIGN KEY (`patient_id`) REFERENCES `patient` (`patient_id`) ON UPDATE CASCADE,
  CONSTRAINT `orders_in_encounter` FOREIGN KEY (`encounter_id`) REFERENCES `encounter` (`encounter_id`),
  CONSTRAINT `previous_order_id_order_id` FOREIGN KEY (`previous_order_id`) REFERENCES `orders` (`order_id`),
  CONSTRAINT `user_who_voided_order` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- drug_order shares its key with orders and has no uuid column of its own.
CREATE TABLE `drug_order` (
  `order_id` INT NOT NULL DEFAULT 0,
  `drug_inventory_id` INT NULL,
  `dose` DOUBLE NULL,
  `as_needed` TINYINT(1) NULL DEFAULT 0,
  `dosing_type` VARCHAR(255) NULL,
  `quantity` DOUBLE NULL,
  `as_needed_condition` VARCHAR(255) NULL,
  `num_refills` INT NULL,
  `dosing_instructions` TEXT NULL,
  `duration` INT NULL,
  `duration_units` INT NULL,
  `quantity_units` INT NULL,
  `route` INT NULL,
  `dose_units` INT NULL,
  `frequency` INT NULL,
  `brand_name` VARCHAR(255) NULL,
  `dispense_as_written` TINYINT(1) NOT NULL DEFAULT 0,
  `drug_non_coded` VARCHAR(255) NULL,
  PRIMARY KEY (`order_id`),
  KEY `drug_order_dose_units` (`dose_units`),
  KEY `drug_order_duration_units_fk` (`duration_units`),
  KEY `drug_order_frequency_fk` (`frequency`),
  KEY `drug_order_quantity_units` (`quantity_units`),
  KEY `drug_order_route_fk` (`route`),
  KEY `inventory_item` (`drug_inventory_id`),
  CONSTRAINT `drug_order_dose_units` FOREIGN KEY (`dose_units`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `drug_order_duration_units_fk` FOREIGN KEY (`duration_units`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `drug_order_quantity_units` FOREIGN KEY (`quantity_units`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `drug_order_route_fk` FOREIGN KEY (`route`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `extends_order` FOREIGN KEY (`order_id`) REFERENCES `orders` (`order_id`),
  CONSTRAINT `inventory_item` FOREIGN KEY (`drug_inventory_id`) REFERENCES `drug` (`drug_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Observations
-- ---------------------------------------------------------------------------

-- obs has no changed_by or date_changed column: an edit inserts a new row whose
-- previous_version points at the old row, and voids the old row.
-- person_id points at person, not patient. value_group_id has no foreign key.
-- status (PRELIMINARY, FINAL, AMENDED) and interpretation: Platform 2.1+.
CREATE TABLE `obs` (
  `obs_id` INT NOT NULL AUTO_INCREMENT,
  `person_id` INT NOT NULL,
  `concept_id` INT NOT NULL DEFAULT 0,
  `encounter_id` INT NULL,
  `order_id` INT NULL,
  `obs_datetime` DATETIME NOT NULL,
  `location_id` INT NULL,
  `obs_group_id` INT NULL,
  `accession_number` VARCHAR(255) NULL,
  `value_group_id` INT NULL,
  `value_coded` INT NULL,
  `value_coded_name_id` INT NULL,
  `value_drug` INT NULL,
  `value_datetime` DATETIME NULL,
  `value_numeric` DOUBLE NULL,
  `value_modifier` VARCHAR(2) NULL,
  `value_text` TEXT NULL,
  `value_complex` VARCHAR(1000) NULL,
  `comments` VARCHAR(255) NULL,
  `creator` INT NOT NULL DEFAULT 0,
  `date_created` DATETIME NOT NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `previous_version` INT NULL,
  `form_namespace_and_path` VARCHAR(255) NULL,
  `status` VARCHAR(16) NOT NULL DEFAULT 'FINAL',
  `interpretation` VARCHAR(32) NULL,
  PRIMARY KEY (`obs_id`),
  UNIQUE KEY `uuid_obs` (`uuid`),
  KEY `answer_concept` (`value_coded`),
  KEY `answer_concept_drug` (`value_drug`),
  KEY `encounter_observations` (`encounter_id`),
  KEY `obs_concept` (`concept_id`),
  KEY `obs_datetime_idx` (`obs_datetime`),
  KEY `obs_enterer` (`creator`),
  KEY `obs_grouping_id` (`obs_group_id`),
  KEY `obs_location` (`location_id`),
  KEY `obs_name_of_coded_value` (`value_coded_name_id`),
  KEY `obs_order` (`order_id`),
  KEY `person_obs` (`person_id`),
  KEY `previous_version` (`previous_version`),
  KEY `user_who_voided_obs` (`voided_by`),
  CONSTRAINT `answer_concept` FOREIGN KEY (`value_coded`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `answer_concept_drug` FOREIGN KEY (`value_drug`) REFERENCES `drug` (`drug_id`),
  CONSTRAINT `encounter_observations` FOREIGN KEY (`encounter_id`) REFERENCES `encounter` (`encounter_id`),
  CONSTRAINT `obs_concept` FOREIGN KEY (`concept_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `obs_enterer` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `obs_grouping_id` FOREIGN KEY (`obs_group_id`) REFERENCES `obs` (`obs_id`),
  CONSTRAINT `obs_location` FOREIGN KEY (`location_id`) REFERENCES `location` (`location_id`),
  CONSTRAINT `obs_name_of_coded_value` FOREIGN KEY (`value_coded_name_id`) REFERENCES `concept_name` (`concept_name_id`),
  CONSTRAINT `obs_order` FOREIGN KEY (`order_id`) REFERENCES `orders` (`order_id`),
  CONSTRAINT `person_obs` FOREIGN KEY (`person_id`) REFERENCES `person` (`person_id`) ON UPDATE CASCADE,
  CONSTRAINT `previous_version` FOREIGN KEY (`previous_version`) REFERENCES `obs` (`obs_id`),
  CONSTRAINT `user_who_voided_obs` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Conditions, diagnoses and allergies
-- ---------------------------------------------------------------------------

-- conditions: Platform 2.2+ shape. date_changed: 2.3+. encounter_id and
-- form_namespace_and_path: 2.4+. uuid really is a nullable VARCHAR(38).
CREATE TABLE `conditions` (
  `condition_id` INT NOT NULL AUTO_INCREMENT,
  `additional_detail` VARCHAR(255) NULL,
  `previous_version` INT NULL,
  `condition_coded` INT NULL,
  `condition_non_coded` VARCHAR(255) NULL,
  `condition_coded_name` INT NULL,
  `clinical_status` VARCHAR(50) NOT NULL,
  `verification_status` VARCHAR(50) NULL,
  `onset_date` DATETIME NULL,
  `date_created` DATETIME NOT NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` VARCHAR(38) NULL,
  `creator` INT NOT NULL,
  `voided_by` INT NULL,
  `changed_by` INT NULL,
  `patient_id` INT NOT NULL,
  `end_date` DATETIME NULL,
  `date_changed` DATETIME NULL,
  `encounter_id` INT NULL,
  `form_namespace_and_path` VARCHAR(255) NULL,
  PRIMARY KEY (`condition_id`),
  UNIQUE KEY `uuid_conditions` (`uuid`),
  KEY `condition_changed_by_fk` (`changed_by`),
  KEY `condition_condition_coded_fk` (`condition_coded`),
  KEY `condition_condition_coded_name_fk` (`condition_coded_name`),
  KEY `condition_creator_fk` (`creator`),
  KEY `condition_patient_fk` (`patient_id`),
  KEY `condition_previous_version_fk` (`previous_version`),
  KEY `condition_voided_by_fk` (`voided_by`),
  KEY `conditions_encounter_id_fk` (`encounter_id`),
  CONSTRAINT `condition_changed_by_fk` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `condition_condition_coded_fk` FOREIGN KEY (`condition_coded`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `condition_condition_coded_name_fk` FOREIGN KEY (`condition_coded_name`) REFERENCES `concept_name` (`concept_name_id`),
  CONSTRAINT `condition_creator_fk` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `condition_patient_fk` FOREIGN KEY (`patient_id`) REFERENCES `patient` (`patient_id`),
  CONSTRAINT `condition_previous_version_fk` FOREIGN KEY (`previous_version`) REFERENCES `conditions` (`condition_id`),
  CONSTRAINT `condition_voided_by_fk` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `conditions_encounter_id_fk` FOREIGN KEY (`encounter_id`) REFERENCES `encounter` (`encounter_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- encounter_diagnosis: Platform 2.2+. dx_rank was called `rank` up to 2.4.
-- form_namespace_and_path: 2.5+. certainty is PROVISIONAL or CONFIRMED.
CREATE TABLE `encounter_diagnosis` (
  `diagnosis_id` INT NOT NULL AUTO_INCREMENT,
  `diagnosis_coded` INT NULL,
  `diagnosis_non_coded` VARCHAR(255) NULL,
  `diagnosis_coded_name` INT NULL,
  `encounter_id` INT NOT NULL,
  `patient_id` INT NOT NULL,
  `condition_id` INT NULL,
  `certainty` VARCHAR(255) NOT NULL,
  `dx_rank` INT NOT NULL,
  `uuid` CHAR(38) NOT NULL,
  `creator` INT NOT NULL,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 0,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `form_namespace_and_path` VARCHAR(255) NULL,
  PRIMARY KEY (`diagnosis_id`),
  UNIQUE KEY `uuid_encounter_diagnosis` (`uuid`),
  KEY `encounter_diagnosis_changed_by_fk` (`changed_by`),
  KEY `encounter_diagnosis_coded_fk` (`diagnosis_coded`),
  KEY `encounter_diagnosis_coded_name_fk` (`diagnosis_coded_name`),
  KEY `encounter_diagnosis_condition_id_fk` (`condition_id`),
  KEY `encounter_diagnosis_creator_fk` (`creator`),
  KEY `encounter_diagnosis_encounter_id_fk` (`encounter_id`),
  KEY `encounter_diagnosis_patient_fk` (`patient_id`),
  KEY `encounter_diagnosis_voided_by_fk` (`voided_by`),
  CONSTRAINT `encounter_diagnosis_changed_by_fk` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_diagnosis_coded_fk` FOREIGN KEY (`diagnosis_coded`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `encounter_diagnosis_coded_name_fk` FOREIGN KEY (`diagnosis_coded_name`) REFERENCES `concept_name` (`concept_name_id`),
  CONSTRAINT `encounter_diagnosis_condition_id_fk` FOREIGN KEY (`condition_id`) REFERENCES `conditions` (`condition_id`),
  CONSTRAINT `encounter_diagnosis_creator_fk` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `encounter_diagnosis_encounter_id_fk` FOREIGN KEY (`encounter_id`) REFERENCES `encounter` (`encounter_id`),
  CONSTRAINT `encounter_diagnosis_patient_fk` FOREIGN KEY (`patient_id`) REFERENCES `patient` (`patient_id`),
  CONSTRAINT `encounter_diagnosis_voided_by_fk` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- allergy: comments was called `comment` before Platform 2.3. encounter_id and
-- form_namespace_and_path: 2.5+. The voided default really is 1, and uuid is
-- nullable with no unique key.
CREATE TABLE `allergy` (
  `allergy_id` INT NOT NULL AUTO_INCREMENT,
  `patient_id` INT NOT NULL,
  `severity_concept_id` INT NULL,
  `coded_allergen` INT NOT NULL,
  `non_coded_allergen` VARCHAR(255) NULL,
  `allergen_type` VARCHAR(50) NOT NULL,
  `comments` VARCHAR(1024) NULL,
  `creator` INT NOT NULL,
  `date_created` DATETIME NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  `voided` TINYINT(1) NOT NULL DEFAULT 1,
  `voided_by` INT NULL,
  `date_voided` DATETIME NULL,
  `void_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NULL,
  `form_namespace_and_path` VARCHAR(255) NULL,
  `encounter_id` INT NULL,
  PRIMARY KEY (`allergy_id`),
  KEY `allergy_changed_by_fk` (`changed_by`),
  KEY `allergy_coded_allergen_fk` (`coded_allergen`),
  KEY `allergy_creator_fk` (`creator`),
  KEY `allergy_encounter_id_fk` (`encounter_id`),
  KEY `allergy_patient_id_fk` (`patient_id`),
  KEY `allergy_severity_concept_id_fk` (`severity_concept_id`),
  KEY `allergy_voided_by_fk` (`voided_by`),
  CONSTRAINT `allergy_changed_by_fk` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`),
  CONSTRAINT `allergy_coded_allergen_fk` FOREIGN KEY (`coded_allergen`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `allergy_creator_fk` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`),
  CONSTRAINT `allergy_encounter_id_fk` FOREIGN KEY (`encounter_id`) REFERENCES `encounter` (`encounter_id`),
  CONSTRAINT `allergy_patient_id_fk` FOREIGN KEY (`patient_id`) REFERENCES `patient` (`patient_id`),
  CONSTRAINT `allergy_severity_concept_id_fk` FOREIGN KEY (`severity_concept_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `allergy_voided_by_fk` FOREIGN KEY (`voided_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per reaction of an allergy (coded, or free text for "other").
CREATE TABLE `allergy_reaction` (
  `allergy_reaction_id` INT NOT NULL AUTO_INCREMENT,
  `allergy_id` INT NOT NULL,
  `reaction_concept_id` INT NOT NULL,
  `reaction_non_coded` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  PRIMARY KEY (`allergy_reaction_id`),
  UNIQUE KEY `allergy_reaction_uuid` (`uuid`),
  KEY `allergy_reaction_allergy_id_fk` (`allergy_id`),
  KEY `allergy_reaction_reaction_concept_id_fk` (`reaction_concept_id`),
  CONSTRAINT `allergy_reaction_allergy_id_fk` FOREIGN KEY (`allergy_id`) REFERENCES `allergy` (`allergy_id`),
  CONSTRAINT `allergy_reaction_reaction_concept_id_fk` FOREIGN KEY (`reaction_concept_id`) REFERENCES `concept` (`concept_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Order frequencies: each is a concept (class Frequency), e.g. "Twice daily".
CREATE TABLE `order_frequency` (
  `order_frequency_id` INT NOT NULL AUTO_INCREMENT,
  `concept_id` INT NOT NULL,
  `frequency_per_day` DOUBLE NULL,
  `creator` INT NOT NULL,
  `date_created` DATETIME NOT NULL,
  `retired` TINYINT(1) NOT NULL DEFAULT 0,
  `retired_by` INT NULL,
  `date_retired` DATETIME NULL,
  `retire_reason` VARCHAR(255) NULL,
  `uuid` CHAR(38) NOT NULL,
  `changed_by` INT NULL,
  `date_changed` DATETIME NULL,
  PRIMARY KEY (`order_frequency_id`),
  UNIQUE KEY `order_frequency_uuid_index` (`uuid`),
  UNIQUE KEY `concept_id` (`concept_id`),
  KEY `order_frequency_creator_fk` (`creator`),
  CONSTRAINT `order_frequency_concept_id_fk` FOREIGN KEY (`concept_id`) REFERENCES `concept` (`concept_id`),
  CONSTRAINT `order_frequency_creator_fk` FOREIGN KEY (`creator`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---------------------------------------------------------------------------
-- Settings
-- ---------------------------------------------------------------------------

-- global_property in the shape of the Platform 2.x schema snapshots.
CREATE TABLE `global_property` (
  `property` VARCHAR(255) NOT NULL,
  `property_value` TEXT NULL,
  `description` TEXT NULL,
  `uuid` CHAR(38) NOT NULL,
  `datatype` VARCHAR(255) NULL,
  `datatype_config` TEXT NULL,
  `preferred_handler` VARCHAR(255) NULL,
  `handler_config` TEXT NULL,
  `date_changed` DATETIME NULL,
  `changed_by` INT NULL,
  PRIMARY KEY (`property`),
  UNIQUE KEY `uuid_global_property` (`uuid`),
  KEY `global_property_changed_by` (`changed_by`),
  CONSTRAINT `global_property_changed_by` FOREIGN KEY (`changed_by`) REFERENCES `users` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

SET FOREIGN_KEY_CHECKS = 1;
