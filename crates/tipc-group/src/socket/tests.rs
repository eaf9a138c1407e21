//! Tests of the socket layer over a perfect in-memory link.
