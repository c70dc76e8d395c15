//! Delivery outcomes on their way to the stats service.

pub mod aggregate;
