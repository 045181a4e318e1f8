//! Typed FA(3) invoices (in progress).
