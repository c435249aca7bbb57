//! The text shown on the thread: quoted history and signatures removed. (Being written.)
