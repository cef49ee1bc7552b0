//! The types of `pai` values and the rules for when one fits another.

use std::fmt;

/// A checked type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Text,
    Path,
    Number,
    Bool,
    Duration,
    /// What every agent call declared `-> result` yields.
    Result,
    /// A record declared with `type NAME { ... }`.
    Record(String),
    List(Box<Type>),
    /// `[]`: fits any list.
    EmptyList,
    /// The type of something already reported as broken; fits everything so one
    /// mistake is reported once.
    Unknown,
}

/// The fields every `result` has.
pub const RESULT_FIELDS: &[&str] = &["status", "summary", "output", "outputs", "children"];

/// Which fields of `result` values an agent's templates can read: a set of
/// [`RESULT_FIELDS`]. A run gives the agent's prompt only these, so a parent that reads
/// its children's `summary` never holds (or fences) their whole `output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResultFields {
    /// Bit `i` stands for `RESULT_FIELDS[i]`.
    bits: u8,
}

impl ResultFields {
    /// Every field: what a template that renders a whole `result` can read.
    pub const ALL: ResultFields = ResultFields {
        bits: (1 << RESULT_FIELDS.len()) - 1,
    };

    /// The bit of field `name`; none for a name that is no field.
    fn bit(name: &str) -> u8 {
        RESULT_FIELDS
            .iter()
            .position(|f| *f == name)
            .map_or(0, |i| 1 << i)
    }

    /// Adds the field `name` (an unknown name adds nothing).
    pub fn read(&mut self, name: &str) {
        self.bits |= Self::bit(name);
    }

    /// Adds every field.
    pub fn read_all(&mut self) {
        *self = ResultFields::ALL;
    }

    /// Both sets together.
    pub fn union(self, other: ResultFields) -> ResultFields {
        ResultFields {
            bits: self.bits | other.bits,
        }
    }

    /// Whether `name` is in the set.
    pub fn contains(self, name: &str) -> bool {
        self.bits & Self::bit(name) != 0
    }

    /// How many fields are in the set.
    pub fn len(self) -> usize {
        self.bits.count_ones() as usize
    }

    /// Whether the set holds no field.
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }
}

impl Type {
    /// The builtin type called `name`.
    pub fn builtin(name: &str) -> Option<Type> {
        Some(match name {
            "text" => Type::Text,
            "path" => Type::Path,
            "number" => Type::Number,
            "bool" => Type::Bool,
            "duration" => Type::Duration,
            "result" => Type::Result,
            _ => return None,
        })
    }

    /// The type of field `field` of a `result`.
    pub fn result_field(field: &str) -> Option<Type> {
        Some(match field {
            "status" | "summary" | "output" => Type::Text,
            "outputs" => Type::List(Box::new(Type::Path)),
            "children" => Type::List(Box::new(Type::Result)),
            _ => return None,
        })
    }

    /// The element type of a list.
    pub fn element(&self) -> Option<Type> {
        match self {
            Type::List(element) => Some((**element).clone()),
            Type::EmptyList | Type::Unknown => Some(Type::Unknown),
            _ => None,
        }
    }

    /// Whether a value of type `self` may be given where `expected` is wanted. A text
    /// literal may also stand for a path; the caller handles that case.
    pub fn fits(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Unknown, _) | (_, Type::Unknown) => true,
            (Type::EmptyList, Type::List(_) | Type::EmptyList) => true,
            (Type::List(_), Type::EmptyList) => true,
            (Type::List(found), Type::List(wanted)) => found.fits(wanted),
            // A path prints as text, so it may be handed to a text parameter.
            (Type::Path, Type::Text) => true,
            (found, wanted) => found == wanted,
        }
    }

    /// The type of `a + b` on two lists, if both are lists of one element type.
    pub fn join(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Unknown, _) | (_, Type::Unknown) => Some(Type::Unknown),
            (Type::EmptyList, list @ (Type::List(_) | Type::EmptyList))
            | (list @ Type::List(_), Type::EmptyList) => Some(list.clone()),
            (Type::List(a), Type::List(b)) if b.fits(a) => Some(self.clone()),
            (Type::List(a), Type::List(b)) if a.fits(b) => Some(other.clone()),
            _ => None,
        }
    }

    /// Whether this is a list of any element.
    pub fn is_list(&self) -> bool {
        matches!(self, Type::List(_) | Type::EmptyList)
    }

    /// Whether a value of this type may hold a `result` whose fields a template could
    /// read without naming them (rendering it whole, iterating its fields, handing it to
    /// a helper). Records and unknown types are counted, to be safe.
    pub fn may_hold_result(&self) -> bool {
        match self {
            Type::Result | Type::Record(_) | Type::Unknown => true,
            Type::List(element) => element.may_hold_result(),
            _ => false,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Text => f.write_str("text"),
            Type::Path => f.write_str("path"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Duration => f.write_str("duration"),
            Type::Result => f.write_str("result"),
            Type::Record(name) => f.write_str(name),
            Type::List(element) => write!(f, "list<{element}>"),
            Type::EmptyList => f.write_str("list<_>"),
            Type::Unknown => f.write_str("_"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    #[test]
    fn empty_list_fits_every_list_and_nothing_else() {
        assert!(Type::EmptyList.fits(&list(Type::Result)));
        assert!(!Type::EmptyList.fits(&Type::Text));
    }

    #[test]
    fn path_fits_text_but_not_the_reverse() {
        assert!(Type::Path.fits(&Type::Text));
        assert!(!Type::Text.fits(&Type::Path));
        assert!(!list(Type::Text).fits(&list(Type::Number)));
    }

    #[test]
    fn join_needs_lists_of_one_element_type() {
        assert_eq!(
            list(Type::Result).join(&Type::EmptyList),
            Some(list(Type::Result))
        );
        assert_eq!(list(Type::Result).join(&list(Type::Text)), None);
        assert_eq!(Type::Text.join(&Type::Text), None);
    }
}
