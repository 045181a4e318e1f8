#![doc = "KSeF 2.0 SDK for Rust: authenticate, send invoices (online and batch), fetch UPO, query, export and sync invoices. (work in progress)"]
