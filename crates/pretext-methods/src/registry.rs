//! The macro that turns the method registry in `method.rs` (one line per method) into
//! [`MethodName`](crate::MethodName), [`MethodConfig`](crate::MethodConfig) and the one
//! dispatch from the selected name to its settings.

/// The `name` field's doc, then per method: `Variant = "name in configs", "name in papers",
/// Modality, field: SettingsType` and, for a method that works with one backbone only,
/// `needs BackboneKind "what it does and needs"`.
macro_rules! methods {
    (
        $(#[$name_doc:meta])*
        name: MethodName;
        $(
        $(#[$doc:meta])*
        $variant:ident = $name:literal, $display:literal, $modality:ident, $field:ident: $settings:ty
        $(, needs $backbone:ident $why:literal)?;
    )*) => {
        /// A method's name, as written in configs and on the command line.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, ::serde::Serialize, ::serde::Deserialize)]
        pub enum MethodName {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl MethodName {
            pub const ALL: [MethodName; [$(MethodName::$variant),*].len()] =
                [$(MethodName::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(MethodName::$variant => $name,)*
                }
            }

            /// The method's name as papers write it.
            pub fn display_name(self) -> &'static str {
                match self {
                    $(MethodName::$variant => $display,)*
                }
            }

            const fn reads(self) -> Modality {
                match self {
                    $(MethodName::$variant => Modality::$modality,)*
                }
            }

            /// The backbone the method needs when no other works, and what the method does
            /// that needs it.
            pub const fn required_backbone(self) -> Option<(::pretext_nn::BackboneKind, &'static str)> {
                match self {
                    $(MethodName::$variant => methods!(@needs $($backbone $why)?),)*
                }
            }
        }

        /// The `[method]` section: which method, and each method's settings (paper defaults).
        #[derive(Clone, Debug, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct MethodConfig {
            $(#[$name_doc])*
            pub name: MethodName,
            $($(#[$doc])* pub $field: $settings,)*
        }

        impl Default for MethodConfig {
            fn default() -> Self {
                MethodConfig {
                    name: MethodName::Simclr,
                    $($field: <$settings>::default(),)*
                }
            }
        }

        impl MethodConfig {
            /// The selected method's settings: the one place a name picks its method.
            pub fn settings(&self) -> &dyn $crate::pretext_method::MethodSettings {
                match self.name {
                    $(MethodName::$variant => &self.$field,)*
                }
            }
        }
    };
    (@needs) => { None };
    (@needs $backbone:ident $why:literal) => {
        Some((::pretext_nn::BackboneKind::$backbone, $why))
    };
}

pub(crate) use methods;
