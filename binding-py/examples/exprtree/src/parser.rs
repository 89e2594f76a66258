//! A recursive-descent parser for `+ - * /`, parentheses, numbers and names.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tether_py::Tied;

use crate::Expr;

/// The deepest nesting accepted (the parser recurses once per parenthesis). Only the parser
/// needs it: a chain such as `1+1+...+1` is built in a loop, however long, and the tree's own
/// operations (evaluate, repr, copy) are iterative.
const MAX_DEPTH: usize = 200;

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    depth: usize,
}

/// Parses `text` into a new tree.
pub fn parse(text: &str) -> PyResult<Tied<Expr>> {
    let mut p = Parser {
        text: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let e = p.sum()?;
    p.skip_ws();
    if p.pos != p.text.len() {
        return Err(p.error("unexpected input"));
    }
    Ok(e)
}

impl Parser<'_> {
    fn error(&self, what: &str) -> PyErr {
        PyValueError::new_err(format!("{what} at offset {}", self.pos))
    }

    fn skip_ws(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.get(self.pos).copied()
    }

    fn sum(&mut self) -> PyResult<Tied<Expr>> {
        let mut left = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let right = self.product()?;
            left = Expr::binop(op as char, left, right)?;
        }
        Ok(left)
    }

    fn product(&mut self) -> PyResult<Tied<Expr>> {
        let mut left = self.atom()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            let right = self.atom()?;
            left = Expr::binop(op as char, left, right)?;
        }
        Ok(left)
    }

    fn atom(&mut self) -> PyResult<Tied<Expr>> {
        match self.peek() {
            Some(b'(') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.error("too deeply nested"));
                }
                self.pos += 1;
                let e = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err(self.error("expected ')'"));
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.pos;
                while self
                    .text
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
                {
                    self.pos += 1;
                }
                let s = std::str::from_utf8(&self.text[start..self.pos]).unwrap_or_default();
                let v: f64 = s.parse().map_err(|_| self.error("bad number"))?;
                Ok(Expr::num(v))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self
                    .text
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.pos += 1;
                }
                let s = std::str::from_utf8(&self.text[start..self.pos]).unwrap_or_default();
                Ok(Expr::var(s))
            }
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of input")),
        }
    }
}
