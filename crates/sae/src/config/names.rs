//! Every choice of the configuration that is a name (`--model sae`, `reset = "zero"`):
//! one enum each, declared with [`choice!`](crate::choice), which spells each name once
//! and derives from it clap's `ValueEnum`, `Display`, `FromStr` and serde, so the flag,
//! the TOML key, the JSON field and the error message can never disagree.

/// Declares a `Copy` enum whose variants are written `Variant = "name"`, with
/// [`clap::ValueEnum`], `Display`, `FromStr` (an error quoting the text and listing the
/// names) and serde (as the name), and `ALL` and `name()`.
#[macro_export]
#[doc(hidden)]
macro_rules! choice {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name, as flags, files and messages spell it.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<::clap::builder::PossibleValue> {
                Some(::clap::builder::PossibleValue::new(self.name()))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                    format!("{s:?} is not one of {}", names.join(", "))
                })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

crate::choice! {
    /// Which network to train.
    pub enum ModelKind {
        /// The spiking convolutional auto-encoder.
        Sae = "sae",
        /// The non-spiking conv auto-encoder baseline.
        Ae = "ae",
        /// The conv variational auto-encoder baseline.
        Vae = "vae",
    }
}

crate::choice! {
    /// How pixels become the first layer's input.
    pub enum Encoder {
        /// `s₀[t] = 1[u < x·scale]`, `u` fresh every step.
        Poisson = "poisson",
        /// The analog frame `x·scale` at every step.
        Current = "current",
        /// One spike at the first step the integrated input `c[t] = λc[t−1] + x·scale` crosses θ.
        Latency = "latency",
    }
}

crate::choice! {
    /// How the output layer's activity becomes the reconstruction.
    pub enum Readout {
        /// `x̂ = max_t c_out[t] / (T·scale)` (the authors' default).
        MaxPotential = "max-potential",
        /// `x̂ = mean_t c_out[t]`.
        MeanPotential = "mean-potential",
        /// `x̂ = Σ_t s_out[t] / T`.
        SpikeRate = "spike-rate",
    }
}

crate::choice! {
    /// What a spike does to the membrane potential ([`kernels::lif::Reset`]).
    pub enum Reset {
        /// Back to zero (the paper's).
        Zero = "zero",
        /// The threshold is subtracted.
        Subtract = "subtract",
    }
}

crate::choice! {
    /// What holds a strongly inhibited potential up ([`kernels::lif::Floor`]).
    pub enum Floor {
        /// No floor.
        None = "none",
        /// `max(u, −θ)`.
        Clamp = "clamp",
        /// The authors' code: `θ where u < −θ`.
        Authors = "authors",
    }
}

crate::choice! {
    /// The spike's derivative in the backward pass ([`kernels::lif::Surrogate`]; its slope
    /// is `Config::slope`).
    pub enum Surrogate {
        /// Membrane-potential-based: `s/θ`, only where the neuron fired (the paper's).
        Membrane = "membrane",
        /// `1/(k·|z| + 1)²`.
        FastSigmoid = "fast-sigmoid",
        /// `(k/2) / (1 + (π·k·z/2)²)`.
        Arctan = "arctan",
        /// `k·max(0, 1 − k·|z|)`.
        Triangle = "triangle",
    }
}

crate::choice! {
    /// A named starting point of the configuration.
    pub enum Preset {
        /// Minutes on 2 cores ([`Config::quick`](super::Config::quick)).
        Quick = "quick",
        /// The paper's ([`Config::paper`](super::Config::paper)).
        Paper = "paper",
    }
}

impl From<Reset> for kernels::lif::Reset {
    fn from(r: Reset) -> Self {
        match r {
            Reset::Zero => kernels::lif::Reset::Zero,
            Reset::Subtract => kernels::lif::Reset::Subtract,
        }
    }
}

impl From<Floor> for kernels::lif::Floor {
    fn from(f: Floor) -> Self {
        match f {
            Floor::None => kernels::lif::Floor::None,
            Floor::Clamp => kernels::lif::Floor::Clamp,
            Floor::Authors => kernels::lif::Floor::Authors,
        }
    }
}

impl Surrogate {
    /// The kernel's surrogate of this kind with slope `k` (ignored by `membrane`).
    pub fn with_slope(self, slope: f32) -> kernels::lif::Surrogate {
        match self {
            Surrogate::Membrane => kernels::lif::Surrogate::Membrane,
            Surrogate::FastSigmoid => kernels::lif::Surrogate::FastSigmoid { slope },
            Surrogate::Arctan => kernels::lif::Surrogate::Arctan { slope },
            Surrogate::Triangle => kernels::lif::Surrogate::Triangle { slope },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_errors_list_the_choices() {
        for s in Surrogate::ALL {
            assert_eq!(s.to_string().parse::<Surrogate>().unwrap(), *s);
        }
        let clap_names: Vec<String> = <Reset as clap::ValueEnum>::value_variants()
            .iter()
            .map(|v| {
                clap::ValueEnum::to_possible_value(v)
                    .unwrap()
                    .get_name()
                    .to_owned()
            })
            .collect();
        assert_eq!(clap_names, ["zero", "subtract"]);
        assert_eq!(Readout::MaxPotential.to_string(), "max-potential");
        assert_eq!(Surrogate::FastSigmoid.to_string(), "fast-sigmoid");
        let err = "sigmoid".parse::<Surrogate>().unwrap_err();
        assert_eq!(
            err,
            "\"sigmoid\" is not one of membrane, fast-sigmoid, arctan, triangle"
        );
        assert_eq!(
            serde_json::to_string(&ModelKind::Vae).unwrap(),
            "\"vae\"".to_string()
        );
        assert_eq!(
            serde_json::from_str::<Floor>("\"clamp\"").unwrap(),
            Floor::Clamp
        );
    }
}
