extension WorkerConfiguration {
    public struct InputsSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `inputs.roots`: job input paths must resolve (symlinks followed) under one of these. Default none.
        public var roots: [String] = []

        package static var keys: [ConfigKey<Self>] { [.key("roots", \.roots)] }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
