//! Quoted-reply stripping on the reply corpora. (Being written.)
