#![doc = "A faithful local KSeF 2.0 server for tests, demos and integration tests. (work in progress)"]
