/// A section of the config (the root is one too): a mapping whose keys are its ``keys``.
/// A conforming type's `init(from:)` is `try self.init(reading: decoder)`.
package protocol ConfigSection: Decodable {
    init()
    /// Every key of the section, once each, in the order they are read: its YAML name, the
    /// property it sets (whose initial value is the key's one default) and the check of its value.
    static var keys: [ConfigKey<Self>] { get }
    /// Checks between keys of the section, once all are read (`reader` tells which were set).
    func check(_ reader: ConfigReader) throws
}

extension ConfigSection {
    package func check(_ reader: ConfigReader) throws {}

    /// The defaults, then each key the YAML sets; an undeclared key is refused.
    package init(reading decoder: Decoder) throws {
        self.init()
        let reader = try ConfigReader(decoder, known: Self.keys.map(\.name))
        for key in Self.keys { try key.read(reader, &self) }
        try check(reader)
    }
}

/// One key of a section, declared once in the section's `keys`.
package struct ConfigKey<Section> {
    /// The key in the YAML (snake_case).
    package let name: String
    /// The keys a nested section declares (the root's keys are sections).
    package var children: [String] = []
    let read: (ConfigReader, inout Section) throws -> Void

    /// Any decodable value (a string, a flag, a list, a mapping); `check` refuses what the type lets through.
    package static func key<T: Decodable>(
        _ name: String, _ path: WritableKeyPath<Section, T>, check: @escaping (T) throws -> Void = { _ in }
    ) -> Self {
        Self(name: name) { reader, section in
            guard let value: T = try reader.value(name) else { return }
            try check(value)
            section[keyPath: path] = value
        }
    }

    /// A value read as `Raw` (a string, a list of strings) and made a `T` by `convert`, which names what it refuses.
    package static func key<Raw: Decodable, T>(
        _ name: String, _ path: WritableKeyPath<Section, T>, as _: Raw.Type, _ convert: @escaping (Raw) throws -> T
    ) -> Self {
        Self(name: name) { reader, section in
            guard let raw: Raw = try reader.value(name) else { return }
            section[keyPath: path] = try convert(raw)
        }
    }

    /// A whole number in `range`.
    package static func number(_ name: String, _ path: WritableKeyPath<Section, Int>, _ range: ClosedRange<Int>) -> Self {
        Self(name: name) { reader, section in
            if let value = try reader.number(name, range) { section[keyPath: path] = value }
        }
    }

    /// A number of `unit` in `range`.
    package static func number(_ name: String, _ path: WritableKeyPath<Section, Double>, _ range: ClosedRange<Double>, unit: String) -> Self {
        Self(name: name) { reader, section in
            if let value = try reader.number(name, range, unit: unit) { section[keyPath: path] = value }
        }
    }

    /// A number of seconds from 0 to 30 days.
    package static func seconds(_ name: String, _ path: WritableKeyPath<Section, Double>) -> Self {
        Self(name: name) { reader, section in
            if let value = try reader.seconds(name) { section[keyPath: path] = value }
        }
    }

    /// A nested section (a key of the root).
    package static func section<S: ConfigSection>(_ name: String, _ path: WritableKeyPath<Section, S>) -> Self {
        var key = Self.key(name, path)
        key.children = S.keys.map(\.name)
        return key
    }
}
