-- Run once by the official postgres image, on its first start with an empty
-- data volume (files in /docker-entrypoint-initdb.d/). One database per Coffer
-- service, owned by the `coffer` role that POSTGRES_USER creates; each service
-- creates its own tables at start.
CREATE DATABASE api;
CREATE DATABASE scheduler;
CREATE DATABASE provisioner;
CREATE DATABASE backup;
CREATE DATABASE monitor;
CREATE DATABASE notifier;
