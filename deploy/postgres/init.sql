-- One database per service: no service reads another's.
CREATE DATABASE gateway;
CREATE DATABASE customer;
CREATE DATABASE product;
CREATE DATABASE sync;
CREATE DATABASE analytics;
