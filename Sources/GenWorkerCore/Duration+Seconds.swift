extension Duration {
    /// The duration in seconds, for metrics and logs.
    package var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
