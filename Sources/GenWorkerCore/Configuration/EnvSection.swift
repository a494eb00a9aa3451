extension WorkerConfiguration {
    public struct EnvSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `env.pass`: variables the generator inherits besides PATH, HOME, LANG, TMPDIR, `CUDA_*`, `NVIDIA_*`.
        public var pass: [String] = []
        /// `env.set`: variables set for the generator.
        public var set: [String: String] = [:]

        package static var keys: [ConfigKey<Self>] { [.key("pass", \.pass), .key("set", \.set)] }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
