//! `exprtree`: arithmetic expressions parsed into a native tree whose nodes are tied to Python
//! wrappers with tether (crate `binding-py`, imported as `tether_py`).
//!
//! The tree is ordinary Rust data: `Tied<Expr>` children, weak parent back-references, interior
//! mutability for what Python may change. Python sees one wrapper per node for the node's whole
//! life: `t.left is t.left`, `t.left.parent is t`, `t.left.value = 3` changes the tree.
//! `contrast` holds the same tree behind plain PyO3 classes, for the tests to compare.

mod contrast;
mod derived;
mod parser;
mod testing;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError, PyZeroDivisionError};
use pyo3::prelude::*;
use tether_py::prelude::*;

/// One node of an expression tree.
pub struct Expr {
    /// The node that holds this one as a child (weak: the tree owns downwards only).
    parent: Mutex<Option<WeakTied<Expr>>>,
    /// What kind of node it is (fixed at creation: it decides the Python class).
    node: Node,
    /// Any Python object the user attaches (`node.tag = ...`); visible to the collector.
    tag: Mutex<Option<Py<PyAny>>>,
}

/// The kinds of node, one Python subclass of `Expr` each.
pub enum Node {
    /// A number.
    Num(Mutex<f64>),
    /// A variable, looked up in the environment when evaluated.
    Var(Mutex<String>),
    /// A binary operation.
    BinOp {
        /// `+`, `-`, `*` or `/`.
        op: Mutex<char>,
        /// The left operand.
        left: Mutex<Tied<Expr>>,
        /// The right operand.
        right: Mutex<Tied<Expr>>,
    },
}

/// The `Mutex`es here are never held while Python code runs, so poisoning only follows a panic
/// in our own code: recover the data.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_op(op: char) -> PyResult<char> {
    match op {
        '+' | '-' | '*' | '/' => Ok(op),
        _ => Err(PyValueError::new_err(format!(
            "op must be one of '+', '-', '*', '/', not {op:?}"
        ))),
    }
}

impl Expr {
    fn with(node: Node) -> Self {
        Self {
            parent: Mutex::new(None),
            node,
            tag: Mutex::new(None),
        }
    }

    /// A number node.
    pub fn num(v: f64) -> Tied<Expr> {
        Tied::new(Self::with(Node::Num(Mutex::new(v))))
    }

    /// A variable node.
    pub fn var(name: &str) -> Tied<Expr> {
        Tied::new(Self::with(Node::Var(Mutex::new(name.to_owned()))))
    }

    /// A binary operation over two detached nodes; they become its children.
    pub fn binop(op: char, left: Tied<Expr>, right: Tied<Expr>) -> PyResult<Tied<Expr>> {
        let node = Tied::new(Self::binop_value(op, left, right)?);
        adopt_children(&node)?;
        Ok(node)
    }

    fn binop_value(op: char, left: Tied<Expr>, right: Tied<Expr>) -> PyResult<Self> {
        Ok(Self::with(Node::BinOp {
            op: Mutex::new(check_op(op)?),
            left: Mutex::new(left),
            right: Mutex::new(right),
        }))
    }

    /// A Num's number (`TypeError` for another kind: a property of one subclass reached on
    /// another, e.g. through `Num.value.__get__(var_node)`).
    fn num_cell(&self) -> PyResult<&Mutex<f64>> {
        match &self.node {
            Node::Num(v) => Ok(v),
            _ => Err(PyTypeError::new_err("not a Num")),
        }
    }

    /// A Var's name (`TypeError` for another kind).
    fn var_cell(&self) -> PyResult<&Mutex<String>> {
        match &self.node {
            Node::Var(n) => Ok(n),
            _ => Err(PyTypeError::new_err("not a Var")),
        }
    }

    /// A BinOp's operator (`TypeError` for another kind).
    fn op_cell(&self) -> PyResult<&Mutex<char>> {
        match &self.node {
            Node::BinOp { op, .. } => Ok(op),
            _ => Err(PyTypeError::new_err("not a BinOp")),
        }
    }

    /// One child of a BinOp (`None` for a leaf).
    pub fn child(&self, right_side: bool) -> Option<Tied<Expr>> {
        match &self.node {
            Node::BinOp { left, right, .. } => {
                Some(lock(if right_side { right } else { left }).clone())
            }
            _ => None,
        }
    }

    /// The children, left to right.
    pub fn children(&self) -> Vec<Tied<Expr>> {
        match &self.node {
            Node::BinOp { left, right, .. } => vec![lock(left).clone(), lock(right).clone()],
            _ => Vec::new(),
        }
    }

    /// The value of the expression, with variables from `env`.
    ///
    /// Iterative (an explicit stack, post-order), so a deep tree cannot overflow the native
    /// stack. Operands are evaluated left then right, and an operation is applied once both are
    /// known: the first error in that order wins (`KeyError` for an unset variable,
    /// `ZeroDivisionError` for a division by zero).
    pub fn evaluate(&self, env: &HashMap<String, f64>) -> PyResult<f64> {
        /// What is left to do.
        enum Step<'a> {
            /// Evaluate a node, pushing its value.
            Node(&'a Expr),
            /// Evaluate a child (held strongly: the tree may change meanwhile).
            Child(Tied<Expr>),
            /// Pop the right then the left operand, push `left op right`.
            Apply(char),
        }
        let mut steps = vec![Step::Node(self)];
        let mut values: Vec<f64> = Vec::new();
        while let Some(step) = steps.pop() {
            let child;
            let e: &Expr = match step {
                Step::Node(e) => e,
                Step::Child(c) => {
                    child = c;
                    &child
                }
                Step::Apply(op) => {
                    let (Some(b), Some(a)) = (values.pop(), values.pop()) else {
                        unreachable!("an operation has two operands");
                    };
                    values.push(match op {
                        '+' => a + b,
                        '-' => a - b,
                        '*' => a * b,
                        _ if b == 0.0 => {
                            return Err(PyZeroDivisionError::new_err("division by zero"));
                        }
                        _ => a / b,
                    });
                    continue;
                }
            };
            match &e.node {
                Node::Num(v) => values.push(*lock(v)),
                Node::Var(name) => {
                    let name = lock(name).clone();
                    match env.get(&name) {
                        Some(&v) => values.push(v),
                        None => {
                            return Err(PyKeyError::new_err(format!(
                                "variable {name:?} is not set"
                            )));
                        }
                    }
                }
                Node::BinOp { op, left, right } => {
                    let op = *lock(op);
                    let (l, r) = (lock(left).clone(), lock(right).clone());
                    steps.push(Step::Apply(op));
                    steps.push(Step::Child(r));
                    steps.push(Step::Child(l));
                }
            }
        }
        match (values.pop(), values.is_empty()) {
            (Some(v), true) => Ok(v),
            _ => unreachable!("an expression has one value"),
        }
    }

    /// The expression as text, fully parenthesised.
    ///
    /// Iterative (an explicit stack), written into one buffer: linear time and no native
    /// recursion however deep the tree.
    pub fn text(&self) -> String {
        /// What is left to write.
        enum Step<'a> {
            /// Write a node.
            Node(&'a Expr),
            /// Write a child (held strongly: the tree may change meanwhile).
            Child(Tied<Expr>),
            /// Write the operator between the operands: ` op `.
            Op(char),
            /// Close a BinOp's parenthesis.
            Close,
        }
        let mut out = String::new();
        let mut steps = vec![Step::Node(self)];
        while let Some(step) = steps.pop() {
            let child;
            let e: &Expr = match step {
                Step::Node(e) => e,
                Step::Child(c) => {
                    child = c;
                    &child
                }
                Step::Op(op) => {
                    out.push(' ');
                    out.push(op);
                    out.push(' ');
                    continue;
                }
                Step::Close => {
                    out.push(')');
                    continue;
                }
            };
            match &e.node {
                Node::Num(v) => {
                    let v = *lock(v);
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{v}");
                }
                Node::Var(n) => out.push_str(&lock(n)),
                Node::BinOp { op, left, right } => {
                    let op = *lock(op);
                    let (l, r) = (lock(left).clone(), lock(right).clone());
                    out.push('(');
                    steps.push(Step::Close);
                    steps.push(Step::Child(r));
                    steps.push(Step::Op(op));
                    steps.push(Step::Child(l));
                }
            }
        }
        out
    }
}

/// Makes `node` the parent of its children. A child that already has another living parent is
/// refused (`ValueError`): a node sits in one place of one tree.
fn adopt_children(node: &Tied<Expr>) -> PyResult<()> {
    let kids = node.children();
    for kid in &kids {
        if Tied::ptr_eq(kid, node) {
            return Err(PyValueError::new_err("a node cannot be its own child"));
        }
        let parent = lock(&kid.parent).as_ref().and_then(WeakTied::upgrade);
        if parent.is_some_and(|p| !Tied::ptr_eq(&p, node)) {
            return Err(PyValueError::new_err(
                "the node already has a parent: detach it first (or use copy())",
            ));
        }
    }
    if kids.len() == 2 && Tied::ptr_eq(&kids[0], &kids[1]) {
        return Err(PyValueError::new_err(
            "left and right must be different nodes",
        ));
    }
    for kid in kids {
        *lock(&kid.parent) = Some(Tied::downgrade(node));
    }
    Ok(())
}

/// Replaces one child of `node` (a BinOp) by `new`, fixing both back-references.
fn set_child(node: &Tied<Expr>, right_side: bool, new: Tied<Expr>) -> PyResult<()> {
    let Node::BinOp { left, right, .. } = &node.node else {
        return Err(PyTypeError::new_err("only a BinOp has children"));
    };
    let slot = if right_side { right } else { left };
    let other = lock(if right_side { left } else { right }).clone();
    if Tied::ptr_eq(&new, &other) || Tied::ptr_eq(&new, node) {
        return Err(PyValueError::new_err(
            "a node cannot be both children, or its own child",
        ));
    }
    let current = lock(&new.parent).as_ref().and_then(WeakTied::upgrade);
    if current.is_some_and(|p| !Tied::ptr_eq(&p, node)) {
        return Err(PyValueError::new_err(
            "the node already has a parent: detach it first (or use copy())",
        ));
    }
    if is_ancestor(&new, node) {
        return Err(PyValueError::new_err("that would make a cycle"));
    }
    let old = std::mem::replace(&mut *lock(slot), new.clone());
    *lock(&old.parent) = None;
    *lock(&new.parent) = Some(Tied::downgrade(node));
    Ok(())
}

/// Whether `a` is `b` or one of its ancestors.
fn is_ancestor(a: &Tied<Expr>, b: &Tied<Expr>) -> bool {
    let mut cur = Some(b.clone());
    while let Some(n) = cur {
        if Tied::ptr_eq(&n, a) {
            return true;
        }
        cur = lock(&n.parent).as_ref().and_then(WeakTied::upgrade);
    }
    false
}

impl Class for Expr {
    const NAME: &'static str = "Expr";
    const MODULE: &'static str = "exprtree";
    const DOC: &'static str = "A node of an expression tree (Num, Var or BinOp).";

    fn class_name(&self) -> &'static str {
        match self.node {
            Node::Num(_) => "Num",
            Node::Var(_) => "Var",
            Node::BinOp { .. } => "BinOp",
        }
    }

    fn created(this: &Tied<Self>) -> PyResult<()> {
        adopt_children(this)
    }

    fn traverse(&self, visit: &Visit<'_>) {
        // `try_lock`: the collector must not block; a node whose tag is being replaced right
        // now is simply not reported this round.
        if let Ok(tag) = self.tag.try_lock() {
            visit.call_opt(tag.as_ref());
        }
    }

    fn clear(&self, _py: Python<'_>) {
        let tag = lock(&self.tag).take();
        drop(tag);
    }

    fn define(c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        let py = c.py();
        c.getter("parent", |e: &Tied<Expr>| {
            Ok(lock(&e.parent).as_ref().and_then(WeakTied::upgrade))
        })
        .with_doc("The node holding this one (None for a root).")
        .getter("children", |e: &Tied<Expr>| Ok(e.children()))
        .with_doc("The child nodes, left to right (a new list of the nodes themselves).")
        .property(
            "tag",
            |e: &Tied<Expr>| {
                Ok(Python::attach(|py| {
                    lock(&e.tag).as_ref().map(|t| t.clone_ref(py))
                }))
            },
            |e: &Tied<Expr>, v: Py<PyAny>| {
                let old = lock(&e.tag).replace(v);
                drop(old); // outside the lock: dropping may run Python code
                Ok(())
            },
        )
        .with_doc("Any Python object attached to the node (None until set).");
        c.method(wrap_pyfunction!(evaluate, py)?)?
            .method(wrap_pyfunction!(walk, py)?)?
            .method(wrap_pyfunction!(copy, py)?)?
            .method(wrap_pyfunction!(detach, py)?)?
            .repr(|e: &Expr| Ok(format!("{}({})", e.class_name(), e.text())))?;
        c.subclass("Num", |c| {
            c.constructor(|(v,): (f64,)| Ok(Expr::with(Node::Num(Mutex::new(v)))))
                .property(
                    "value",
                    |e: &Tied<Expr>| Ok(*lock(e.num_cell()?)),
                    |e: &Tied<Expr>, v: f64| {
                        *lock(e.num_cell()?) = v;
                        Ok(())
                    },
                )
                .with_doc("The number.");
            Ok(())
        })?;
        c.subclass("Var", |c| {
            c.constructor(|(name,): (String,)| Ok(Expr::with(Node::Var(Mutex::new(name)))))
                .property(
                    "name",
                    |e: &Tied<Expr>| Ok(lock(e.var_cell()?).clone()),
                    |e: &Tied<Expr>, v: String| {
                        *lock(e.var_cell()?) = v;
                        Ok(())
                    },
                )
                .with_doc("The variable's name.");
            Ok(())
        })?;
        c.subclass("BinOp", |c| {
            c.constructor(|(op, l, r): (char, Tied<Expr>, Tied<Expr>)| Expr::binop_value(op, l, r))
                .property(
                    "op",
                    |e: &Tied<Expr>| Ok(*lock(e.op_cell()?)),
                    |e: &Tied<Expr>, v: char| {
                        *lock(e.op_cell()?) = check_op(v)?;
                        Ok(())
                    },
                )
                .with_doc("The operator: '+', '-', '*' or '/'.")
                .property(
                    "left",
                    |e: &Tied<Expr>| Ok(e.child(false)),
                    |e: &Tied<Expr>, v: Tied<Expr>| set_child(e, false, v),
                )
                .with_doc("The left operand (assigning re-parents both nodes).")
                .property(
                    "right",
                    |e: &Tied<Expr>| Ok(e.child(true)),
                    |e: &Tied<Expr>, v: Tied<Expr>| set_child(e, true, v),
                )
                .with_doc("The right operand (assigning re-parents both nodes).");
            Ok(())
        })?;
        Ok(())
    }
}

/// evaluate(self, env=None) -> float: the value, with variables taken from the dict `env`.
#[pyfunction]
#[pyo3(signature = (this, env = None))]
fn evaluate(this: Tied<Expr>, env: Option<HashMap<String, f64>>) -> PyResult<f64> {
    this.evaluate(&env.unwrap_or_default())
}

/// walk(self) -> list: this node and every node below it, depth first, parents first.
#[pyfunction]
fn walk(this: Tied<Expr>) -> Vec<Tied<Expr>> {
    let mut out = Vec::new();
    let mut stack = vec![this];
    while let Some(n) = stack.pop() {
        let mut kids = n.children();
        kids.reverse();
        stack.extend(kids);
        out.push(n);
    }
    out
}

/// copy(self) -> Expr: a deep copy (new nodes, no parent).
#[pyfunction]
fn copy(this: Tied<Expr>) -> PyResult<Tied<Expr>> {
    deep_copy(&this)
}

/// A deep copy of `e`: new nodes, no parent. Iterative (an explicit stack, post-order): the
/// leaves are copied first, each BinOp once both of its operands are.
fn deep_copy(e: &Expr) -> PyResult<Tied<Expr>> {
    /// What is left to do.
    enum Step<'a> {
        /// Copy a node, pushing the copy.
        Node(&'a Expr),
        /// Copy a child (held strongly: the tree may change meanwhile).
        Child(Tied<Expr>),
        /// Pop the right then the left copy, push a new BinOp over them.
        Build(char),
    }
    let mut steps = vec![Step::Node(e)];
    let mut copies: Vec<Tied<Expr>> = Vec::new();
    while let Some(step) = steps.pop() {
        let child;
        let e: &Expr = match step {
            Step::Node(e) => e,
            Step::Child(c) => {
                child = c;
                &child
            }
            Step::Build(op) => {
                let (Some(r), Some(l)) = (copies.pop(), copies.pop()) else {
                    unreachable!("a BinOp has two operands");
                };
                copies.push(Expr::binop(op, l, r)?);
                continue;
            }
        };
        match &e.node {
            Node::Num(v) => copies.push(Expr::num(*lock(v))),
            Node::Var(n) => {
                let name = lock(n).clone();
                copies.push(Expr::var(&name));
            }
            Node::BinOp { op, left, right } => {
                let op = *lock(op);
                let (l, r) = (lock(left).clone(), lock(right).clone());
                steps.push(Step::Build(op));
                steps.push(Step::Child(r));
                steps.push(Step::Child(l));
            }
        }
    }
    match (copies.pop(), copies.is_empty()) {
        (Some(c), true) => Ok(c),
        _ => unreachable!("a copy has one root"),
    }
}

/// detach(self) -> Expr: replaces this node in its parent by a copy and returns this node, now
/// a root (so it can be put elsewhere).
#[pyfunction]
fn detach(this: Tied<Expr>) -> PyResult<Tied<Expr>> {
    let parent = lock(&this.parent).as_ref().and_then(WeakTied::upgrade);
    if let Some(p) = parent {
        let kids = p.children();
        let right_side = kids.get(1).is_some_and(|k| Tied::ptr_eq(k, &this));
        let stand_in = deep_copy(&this)?;
        set_child(&p, right_side, stand_in)?;
    }
    Ok(this)
}

/// parse(text) -> Expr: parses `+ - * /`, parentheses, numbers and names (ValueError on bad
/// input).
#[pyfunction]
fn parse(text: &str) -> PyResult<Tied<Expr>> {
    parser::parse(text)
}

/// _stats() -> dict: tether's counters for this module's objects (tests check they balance).
#[pyfunction]
fn _stats() -> HashMap<&'static str, isize> {
    tether_py::stats().into_iter().collect()
}

/// The extension module.
#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_class::<Expr>(m)?;
    // Submodules, importable by name (pickle finds their classes through `sys.modules`).
    let modules = m.py().import("sys")?.getattr("modules")?;
    for sub in [
        contrast::module(m.py())?,
        testing::module(m.py())?,
        derived::module(m.py())?,
    ] {
        let name = sub.name()?.to_string();
        m.add_submodule(&sub)?;
        modules.set_item(format!("exprtree._native.{name}"), sub)?;
    }
    m.add_function(wrap_pyfunction!(parse, m)?)?;
    m.add_function(wrap_pyfunction!(_stats, m)?)?;
    Ok(())
}
