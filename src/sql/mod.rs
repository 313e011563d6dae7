//! Statement parsing and result formatting.
