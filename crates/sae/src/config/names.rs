//! Every choice of the configuration that is a name (`--model sae`, `reset = "zero"`):
//! one enum each, its names spelled once, by clap's `ValueEnum` derive (kebab case of
//! the variant). [`named!`](crate::named) gives each `Display`, `FromStr` and serde in
//! terms of those names, so the flag, the TOML key, the JSON field and the error message
//! can never disagree.

use clap::ValueEnum;

/// `Display`, `FromStr` (an error listing the valid names) and serde (as the name) for
/// enums that derive [`clap::ValueEnum`].
#[macro_export]
#[doc(hidden)]
macro_rules! named {
    ($($t:ty),* $(,)?) => {$(
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::config::names::name_of(self))
            }
        }
        impl ::std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $crate::config::names::parse(s)
            }
        }
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&$crate::config::names::name_of(self))
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                $crate::config::names::parse(&s).map_err(::serde::de::Error::custom)
            }
        }
    )*};
}

/// The name of a value of a [`ValueEnum`].
pub fn name_of<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .expect("no variant is skipped")
        .get_name()
        .to_owned()
}

/// The value a name stands for; the error quotes it and lists the valid names.
pub fn parse<T: ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!("{s:?} is not one of {}", names.join(", "))
    })
}

/// Which network to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// The spiking convolutional auto-encoder.
    Sae,
    /// The non-spiking conv auto-encoder baseline.
    Ae,
    /// The conv variational auto-encoder baseline.
    Vae,
}

/// How pixels become the first layer's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Encoder {
    /// `s₀[t] = 1[u < x·scale]`, `u` fresh every step.
    Poisson,
    /// The analog frame `x·scale` at every step.
    Current,
    /// One spike at the first step the integrated input `c[t] = λc[t−1] + x·scale` crosses θ.
    Latency,
}

/// How the output layer's activity becomes the reconstruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Readout {
    /// `x̂ = max_t c_out[t] / (T·scale)` (the authors' default).
    MaxPotential,
    /// `x̂ = mean_t c_out[t]`.
    MeanPotential,
    /// `x̂ = Σ_t s_out[t] / T`.
    SpikeRate,
}

/// What a spike does to the membrane potential ([`kernels::lif::Reset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Reset {
    /// Back to zero (the paper's).
    Zero,
    /// The threshold is subtracted.
    Subtract,
}

/// What holds a strongly inhibited potential up ([`kernels::lif::Floor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Floor {
    /// No floor.
    None,
    /// `max(u, −θ)`.
    Clamp,
    /// The authors' code: `θ where u < −θ`.
    Authors,
}

/// The spike's derivative in the backward pass ([`kernels::lif::Surrogate`]; its slope
/// is `Config::slope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Surrogate {
    /// Membrane-potential-based: `s/θ`, only where the neuron fired (the paper's).
    Membrane,
    /// `1/(k·|z| + 1)²`.
    FastSigmoid,
    /// `(k/2) / (1 + (π·k·z/2)²)`.
    Arctan,
    /// `k·max(0, 1 − k·|z|)`.
    Triangle,
}

/// A named starting point of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Minutes on 2 cores ([`Config::quick`](super::Config::quick)).
    Quick,
    /// The paper's ([`Config::paper`](super::Config::paper)).
    Paper,
}

crate::named!(ModelKind, Encoder, Readout, Reset, Floor, Surrogate, Preset);

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
        for s in Surrogate::value_variants() {
            assert_eq!(s.to_string().parse::<Surrogate>().unwrap(), *s);
        }
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
