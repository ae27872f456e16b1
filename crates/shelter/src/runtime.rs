//! What runs beside the adapters for the life of the process: the chat hub of this
//! instance ([`hub`]), graceful shutdown ([`shutdown`]), logging and the metrics recorder
//! ([`telemetry`]), and the delivery of back-channel logouts to OAuth clients
//! ([`backchannel`]).

pub mod backchannel;
pub mod hub;
pub mod shutdown;
pub mod telemetry;
