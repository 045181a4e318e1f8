#![doc = include_str!("../README.md")]

mod call;
mod clock;
mod error;
mod exception;
mod operations;
pub mod pacing;
mod presigned;
pub mod retry;
mod token;
mod transport;
mod warnings;

pub use call::{BearerHeader, RequestBody};
pub use clock::{Clock, ManualClock, SleepFuture, TokioClock};
pub use error::{
    ApiError, Error, ErrorFormat, ExceptionDetail, ForbiddenReason, Result, parse_retry_after,
};
pub use exception::ExceptionCode;
pub use presigned::{DownloadInfo, PresignedUpload};
pub use retry::RetryPolicy;
pub use token::{
    AccessOrRefresh, AccessOrRefreshToken, AccessToken, AuthenticationToken, Bearer, RefreshToken,
};
pub use transport::{Endpoint, HttpMethod, Response, Transport, TransportBuilder, XmlDocument};
pub use warnings::{SystemWarning, parse_system_warnings};
