//! `#[derive(Class)]`: the declarative form of tether's extension API (crate `binding-py`,
//! imported as `tether_py`, which re-exports the derive next to the trait `Class`).
//!
//! ```ignore
//! use std::sync::Mutex;
//! use std::sync::atomic::AtomicI64;
//! use pyo3::prelude::*;
//! use tether_py::prelude::*;
//!
//! /// A counter.
//! #[derive(Class)]
//! #[tether(module = "mytree", new = Counter::new, methods(bump), repr = Counter::repr, gc)]
//! pub struct Counter {
//!     /// The count.
//!     #[tether(get, set)]
//!     count: AtomicI64,
//!     /// A label.
//!     #[tether(get, set, name = "title")]
//!     label: Mutex<String>,
//!     /// A node, or None.
//!     #[tether(get, set, of = Node)]
//!     node: Member,
//! }
//! ```
//!
//! The generated code names `::tether_py` and `::pyo3`: the crate using the derive depends on
//! both. See `docs/extending.md` for the attributes.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Expr, ExprLit, Fields, Ident, Lit, LitStr, Meta, Path, Token,
    Type,
};

/// Implements `tether_py::Class` for a struct with named fields.
///
/// On the struct, `#[tether(...)]` takes `module = "pkg.mod"` (required), `name = "Py"` (the
/// Python class name; default: the struct's name), `new = path` (a constructor
/// `fn((A, B, ...)) -> PyResult<Self>`), `methods(f, g, ...)` (`#[pyfunction]`s taking
/// `this: Tied<Self>` first), `repr = path` (`fn(&Self) -> PyResult<String>`) and `gc` (report
/// every `Member` field to the collector). The struct's doc comment is the class docstring.
///
/// On a field, `#[tether(get)]` (read-only) or `#[tether(get, set)]` exposes it as a property,
/// named `name = "py_name"` or after the field; its doc comment is the property's. A field of
/// type `Member` is a member (`get, set` together; `of = Class` accepts only that class and
/// `None`, `required` refuses `None`); any other field is read and written through
/// `tether_py::FieldCell` (`Mutex`, `RwLock`, the atomics, or your own implementation).
#[proc_macro_derive(Class, attributes(tether))]
pub fn derive_class(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The keys of the struct's `#[tether(...)]`.
const CONTAINER_KEYS: &str = "`module`, `name`, `new`, `methods`, `repr`, `gc`";
/// The keys of a field's `#[tether(...)]`.
const FIELD_KEYS: &str = "`get`, `set`, `name`, `of`, `required`";

/// The struct's `#[tether(...)]`.
#[derive(Default)]
struct Container {
    module: Option<LitStr>,
    name: Option<LitStr>,
    new: Option<Path>,
    methods: Option<Vec<Path>>,
    repr: Option<Path>,
    gc: Option<Span>,
}

/// A field's `#[tether(...)]`.
#[derive(Default)]
struct FieldAttrs {
    /// Where the attribute is (for errors about it as a whole).
    span: Option<Span>,
    get: Option<Span>,
    set: Option<Span>,
    name: Option<LitStr>,
    of: Option<Type>,
    required: Option<Span>,
}

/// Sets `slot` once; a second occurrence of `key` is an error.
fn once<T>(slot: &mut Option<T>, value: T, key: &Path) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(
            key,
            format!("duplicate `{}`", path_text(key)),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn path_text(p: &Path) -> String {
    quote!(#p).to_string().replace(' ', "")
}

/// Collects errors, to report them all at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn check(&mut self, r: syn::Result<()>) {
        if let Err(e) = r {
            self.push(e);
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn parse_container(attrs: &[Attribute], errors: &mut Errors) -> Container {
    let mut c = Container::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("tether")) {
        errors.check(attr.parse_nested_meta(|meta| {
            let key = &meta.path;
            if key.is_ident("module") {
                once(&mut c.module, meta.value()?.parse()?, key)
            } else if key.is_ident("name") {
                once(&mut c.name, meta.value()?.parse()?, key)
            } else if key.is_ident("new") {
                once(&mut c.new, meta.value()?.parse()?, key)
            } else if key.is_ident("repr") {
                once(&mut c.repr, meta.value()?.parse()?, key)
            } else if key.is_ident("methods") {
                let content;
                syn::parenthesized!(content in meta.input);
                let list = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
                once(&mut c.methods, list.into_iter().collect(), key)
            } else if key.is_ident("gc") {
                once(&mut c.gc, key.span(), key)
            } else {
                let hint = if ["get", "set", "of", "required"]
                    .iter()
                    .any(|k| key.is_ident(k))
                {
                    " (this one goes on a field)"
                } else {
                    ""
                };
                Err(meta.error(format!(
                    "unknown `tether` attribute `{}` on the struct{hint}: expected one of \
                     {CONTAINER_KEYS}",
                    path_text(key)
                )))
            }
        }));
    }
    c
}

fn parse_field(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut f = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("tether")) {
        f.span.get_or_insert(attr.span());
        errors.check(attr.parse_nested_meta(|meta| {
            let key = &meta.path;
            if key.is_ident("get") {
                once(&mut f.get, key.span(), key)
            } else if key.is_ident("set") {
                once(&mut f.set, key.span(), key)
            } else if key.is_ident("required") {
                once(&mut f.required, key.span(), key)
            } else if key.is_ident("name") {
                once(&mut f.name, meta.value()?.parse()?, key)
            } else if key.is_ident("of") {
                once(&mut f.of, meta.value()?.parse()?, key)
            } else {
                let hint = if ["module", "new", "methods", "repr", "gc"]
                    .iter()
                    .any(|k| key.is_ident(k))
                {
                    " (this one goes on the struct)"
                } else {
                    ""
                };
                Err(meta.error(format!(
                    "unknown `tether` attribute `{}` on a field{hint}: expected one of \
                     {FIELD_KEYS}",
                    path_text(key)
                )))
            }
        }));
    }
    f
}

/// The doc comment (`///` lines, `#[doc = ...]`) as a `&'static str` expression: the lines
/// joined with newlines, one leading space stripped from each (as rustdoc and PyO3 do). `None`
/// without one.
fn doc_expr(attrs: &[Attribute]) -> Option<TokenStream2> {
    let mut parts: Vec<Result<String, &Expr>> = Vec::new();
    for attr in attrs {
        let Meta::NameValue(nv) = &attr.meta else {
            continue; // `#[doc(hidden)]` and the like
        };
        if !nv.path.is_ident("doc") {
            continue;
        }
        match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => {
                let text = s.value();
                let lines: Vec<&str> = text
                    .lines()
                    .map(|l| l.strip_prefix(' ').unwrap_or(l))
                    .collect();
                parts.push(Ok(lines.join("\n")));
            }
            // `#[doc = include_str!("...")]`: left to `concat!`.
            other => parts.push(Err(other)),
        }
    }
    if parts.is_empty() {
        return None;
    }
    if parts.iter().all(Result::is_ok) {
        let text: Vec<&str> = parts.iter().filter_map(|p| p.as_deref().ok()).collect();
        let text = text.join("\n");
        let text = text.trim();
        return (!text.is_empty()).then(|| quote!(#text));
    }
    let pieces = parts.iter().map(|p| match p {
        Ok(s) => quote!(#s),
        Err(e) => quote!(#e),
    });
    Some(quote!(::core::concat!(#(#pieces),*)))
}

/// Whether `ty` names `Member` (its last path segment, without generic arguments).
fn is_member(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Member" && s.arguments.is_none()),
        Type::Group(g) => is_member(&g.elem),
        Type::Paren(p) => is_member(&p.elem),
        _ => false,
    }
}

/// Whether `name` can be a Python attribute or class name.
fn valid_py_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// The `impl ::tether_py::Class` for `input`, or the errors (all of them).
fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let mut errors = Errors::default();
    let ident = &input.ident;

    let fields: Vec<&syn::Field> = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named.named.iter().collect(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(_) => {
                return Err(syn::Error::new_spanned(
                    &s.fields,
                    "#[derive(Class)] needs a struct with named fields (`struct S { ... }`), \
                     not a tuple struct",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new_spanned(
                e.enum_token,
                "#[derive(Class)] supports structs only: for an enum (a class hierarchy), \
                 implement `tether_py::Class` by hand with `ClassDef::subclass` and \
                 `Class::class_name`",
            ));
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "#[derive(Class)] supports structs only, not unions",
            ));
        }
    };
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "#[derive(Class)] does not support generic parameters (a Python class is one \
             concrete Rust type): implement `tether_py::Class` by hand for each instantiation",
        ));
    }

    let container = parse_container(&input.attrs, &mut errors);
    let module = match &container.module {
        Some(m) if m.value().is_empty() => {
            errors.push(syn::Error::new_spanned(m, "`module` must not be empty"));
            None
        }
        Some(m) => Some(m.clone()),
        None => {
            errors.push(syn::Error::new(
                Span::call_site(),
                "#[derive(Class)] needs the Python module the class belongs to: add \
                 `#[tether(module = \"package.module\")]` to the struct",
            ));
            None
        }
    };
    let name = match &container.name {
        Some(n) if !valid_py_name(&n.value()) => {
            errors.push(syn::Error::new_spanned(
                n,
                format!("`{}` is not a valid Python class name", n.value()),
            ));
            n.clone()
        }
        Some(n) => n.clone(),
        None => LitStr::new(&ident.unraw().to_string(), ident.span()),
    };

    // Hygienic names for the generated locals.
    let class = Ident::new("class", Span::mixed_site());
    let py = Ident::new("py", Span::mixed_site());
    let this = Ident::new("this", Span::mixed_site());
    let value = Ident::new("value", Span::mixed_site());
    let visit = Ident::new("visit", Span::mixed_site());

    let mut properties = Vec::new();
    let mut members = Vec::new();
    let mut py_names: Vec<String> = Vec::new();
    for field in &fields {
        let Some(field_ident) = &field.ident else {
            continue;
        };
        let ty = &field.ty;
        let member = is_member(ty);
        if member {
            members.push(field_ident);
        }
        let attrs = parse_field(&field.attrs, &mut errors);
        let Some(attr_span) = attrs.span else {
            continue; // not exposed
        };
        let Some(get_span) = attrs.get else {
            let msg = if attrs.set.is_some() {
                "`set` needs `get`: write `#[tether(get, set)]` (write-only properties are \
                 not supported)"
            } else {
                "`#[tether(...)]` on a field needs `get` (read-only) or `get, set` (read-write)"
            };
            errors.push(syn::Error::new(attrs.set.unwrap_or(attr_span), msg));
            continue;
        };
        let py_name = match &attrs.name {
            Some(n) => {
                if !valid_py_name(&n.value()) {
                    errors.push(syn::Error::new_spanned(
                        n,
                        format!("`{}` is not a valid Python attribute name", n.value()),
                    ));
                }
                n.value()
            }
            None => field_ident.unraw().to_string(),
        };
        if py_names.contains(&py_name) {
            errors.push(syn::Error::new(
                attrs.name.as_ref().map_or(field_ident.span(), LitStr::span),
                format!("two fields are exposed as the property `{py_name}`"),
            ));
        }
        py_names.push(py_name.clone());
        let with_doc = doc_expr(&field.attrs).map(|d| quote!(.with_doc(#d)));

        if member {
            if attrs.set.is_none() {
                errors.push(syn::Error::new(
                    get_span,
                    "a `Member` field is a read-write property: write `#[tether(get, set)]` \
                     (to expose it read-only, use a `FieldCell` field or the builder's \
                     `ClassDef::getter`)",
                ));
                continue;
            }
            let call = match &attrs.of {
                Some(of) => {
                    let nullable = attrs.required.is_none();
                    quote_spanned! {of.span()=>
                        #class.member_of::<#of, _>(
                            #py_name,
                            #nullable,
                            |#this: &Self| &#this.#field_ident,
                        )
                    }
                }
                None => {
                    if let Some(r) = attrs.required {
                        errors.push(syn::Error::new(
                            r,
                            "`required` needs `of = Class` (an untyped member holds any \
                             object, `None` included)",
                        ));
                    }
                    quote! {
                        #class.member(#py_name, |#this: &Self| &#this.#field_ident)
                    }
                }
            };
            properties.push(quote!(#call #with_doc;));
            continue;
        }

        if let Some(of) = &attrs.of {
            errors.push(syn::Error::new_spanned(
                of,
                "`of` applies to a `Member` field only (the property's type is the field's \
                 `FieldCell::Value`)",
            ));
        }
        if let Some(r) = attrs.required {
            errors.push(syn::Error::new(
                r,
                "`required` applies to a `Member` field only",
            ));
        }
        let cell = quote_spanned!(ty.span()=> <#ty as ::tether_py::FieldCell>);
        let get = quote! {
            |#this: &::tether_py::Tied<Self>| -> ::pyo3::PyResult<#cell::Value> {
                ::core::result::Result::Ok(#cell::load(&#this.#field_ident))
            }
        };
        let call = if attrs.set.is_some() {
            quote! {
                #class.property(
                    #py_name,
                    #get,
                    |#this: &::tether_py::Tied<Self>, #value: #cell::Value| -> ::pyo3::PyResult<()> {
                        #cell::store(&#this.#field_ident, #value);
                        ::core::result::Result::Ok(())
                    },
                )
            }
        } else {
            quote!(#class.getter(#py_name, #get))
        };
        properties.push(quote!(#call #with_doc;));
    }

    let constructor = container
        .new
        .as_ref()
        .map(|new| quote!(#class.constructor(#new);));
    let methods: Vec<TokenStream2> = container
        .methods
        .iter()
        .flatten()
        .map(|m| {
            quote_spanned! {m.span()=>
                #class.method(::pyo3::wrap_pyfunction!(#m, #py)?)?;
            }
        })
        .collect();
    let let_py = (!methods.is_empty()).then(|| quote!(let #py = #class.py();));
    let repr = container.repr.as_ref().map(|r| quote!(#class.repr(#r)?;));
    let gc = match container.gc {
        Some(span) if members.is_empty() => {
            errors.push(syn::Error::new(
                span,
                "`gc` reports the struct's `Member` fields to the collector, and it has none",
            ));
            None
        }
        Some(_) => Some(quote! {
            fn traverse(&self, #visit: &::tether_py::Visit<'_>) {
                #(::tether_py::Member::traverse(&self.#members, #visit);)*
            }

            fn clear(&self, #py: ::pyo3::Python<'_>) {
                #(::tether_py::Member::clear(&self.#members, #py);)*
            }
        }),
        None => None,
    };
    let doc = doc_expr(&input.attrs).map(|d| quote!(const DOC: &'static str = #d;));

    errors.finish()?;
    Ok(quote! {
        #[automatically_derived]
        impl ::tether_py::Class for #ident {
            const NAME: &'static str = #name;
            const MODULE: &'static str = #module;
            #doc

            fn define(#class: &mut ::tether_py::ClassDef<'_, Self>) -> ::pyo3::PyResult<()> {
                #let_py
                #constructor
                #(#properties)*
                #(#methods)*
                #repr
                ::core::result::Result::Ok(())
            }

            #gc
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(input: DeriveInput) -> String {
        match expand(&input) {
            Ok(out) => panic!("expected an error, got {out}"),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn output(input: DeriveInput) -> String {
        match expand(&input) {
            Ok(out) => out.to_string(),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn expands_properties_members_and_hooks() {
        let out = output(syn::parse_quote! {
            /// A counter.
            ///
            /// Second paragraph.
            #[tether(module = "m", name = "Ctr", new = Counter::create)]
            #[tether(methods(bump, other::f), repr = Counter::repr, gc)]
            struct Counter {
                /// The count.
                #[tether(get, set)]
                count: AtomicI64,
                #[tether(get, name = "title")]
                label: Mutex<String>,
                #[tether(get, set, of = Expr, required)]
                node: Member,
                #[tether(get, set)]
                item: tether_py::Member,
                hidden: Member,
                plain: u32,
            }
        });
        for expected in [
            "const NAME : & 'static str = \"Ctr\"",
            "const MODULE : & 'static str = \"m\"",
            "const DOC : & 'static str = \"A counter.\\n\\nSecond paragraph.\"",
            "class . constructor (Counter :: create)",
            "class . property (\"count\"",
            ". with_doc (\"The count.\")",
            "class . getter (\"title\"",
            "class . member_of :: < Expr , _ > (\"node\" , false",
            "class . member (\"item\"",
            "wrap_pyfunction ! (other :: f , py)",
            "class . repr (Counter :: repr)",
            ":: tether_py :: Member :: traverse (& self . hidden , visit)",
            ":: tether_py :: Member :: clear (& self . item , py)",
        ] {
            assert!(out.contains(expected), "{expected:?} not in {out}");
        }
        assert!(!out.contains("\"plain\""));
    }

    #[test]
    fn nullable_by_default() {
        let out = output(syn::parse_quote! {
            #[tether(module = "m")]
            struct S { #[tether(get, set, of = Expr)] node: Member }
        });
        assert!(out.contains("member_of :: < Expr , _ > (\"node\" , true"));
        assert!(!out.contains("fn traverse"));
    }

    #[test]
    fn module_is_required() {
        let e = error(syn::parse_quote! { struct S { a: u8 } });
        assert!(e.contains("needs the Python module"), "{e}");
    }

    #[test]
    fn shapes_that_are_refused() {
        assert!(
            error(syn::parse_quote! { #[tether(module = "m")] struct S(u8); })
                .contains("not a tuple struct")
        );
        assert!(
            error(syn::parse_quote! { #[tether(module = "m")] enum E { A } })
                .contains("structs only")
        );
        assert!(
            error(syn::parse_quote! { #[tether(module = "m")] struct S<T> { t: T } })
                .contains("generic parameters")
        );
    }

    #[test]
    fn attribute_errors_are_all_reported() {
        let e = error(syn::parse_quote! {
            #[tether(module = "m", colour = "red", gc)]
            struct S {
                #[tether(get)] a: Member,
                #[tether(set)] b: Mutex<u8>,
                #[tether(get, of = Expr)] c: Mutex<u8>,
                #[tether(get, set, required)] d: Member,
                #[tether(get, getter)] e: Mutex<u8>,
                #[tether(get, name = "e")] f: Mutex<u8>,
                #[tether(get, module = "x")] g: Mutex<u8>,
            }
        });
        for expected in [
            "unknown `tether` attribute `colour` on the struct",
            "a `Member` field is a read-write property",
            "`set` needs `get`",
            "`of` applies to a `Member` field only",
            "`required` needs `of = Class`",
            "unknown `tether` attribute `getter` on a field",
            "two fields are exposed as the property `e`",
            "(this one goes on the struct)",
        ] {
            assert!(e.contains(expected), "{expected:?} not in {e}");
        }
    }

    #[test]
    fn duplicates_and_bad_names() {
        let e = error(syn::parse_quote! {
            #[tether(module = "m", name = "Not A Name")]
            #[tether(module = "n")]
            struct S { #[tether(get, get)] a: Mutex<u8> }
        });
        assert!(e.contains("duplicate `module`"), "{e}");
        assert!(e.contains("duplicate `get`"), "{e}");
        assert!(e.contains("not a valid Python class name"), "{e}");
    }

    #[test]
    fn gc_without_members_is_an_error() {
        let e = error(syn::parse_quote! {
            #[tether(module = "m", gc)]
            struct S { #[tether(get)] a: Mutex<u8> }
        });
        assert!(e.contains("it has none"), "{e}");
    }
}
