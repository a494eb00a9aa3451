import Foundation

/// A job as clients publish it to `genworker.jobs` (protocol v1, docs/schemas/job.schema.json).
/// The worker reads incoming jobs through ``JobValidator`` (which explains every mistake);
/// the CLI, the tests and the benchmarks build outgoing ones with this type.
public struct JobMessage: Codable, Sendable, Equatable {
    public var version: Int?
    public var id: String
    public var task: String
    /// generate.py options without the dashes: `prompt`, `size`, `frame_num`, ...
    public var params: [String: JSONValue]
    public var timeoutSeconds: Int?
    /// Protocol 1.1: the job's own destination for its video (a presigned PUT URL).
    public var output: OutputDestination?
    /// Protocol 1.1: where the job's events are POSTed, signed.
    public var webhook: Webhook?

    public init(
        id: String, task: String, params: [String: JSONValue] = [:], timeoutSeconds: Int? = nil, version: Int? = 1,
        output: OutputDestination? = nil, webhook: Webhook? = nil
    ) {
        self.version = version
        self.id = id
        self.task = task
        self.params = params
        self.timeoutSeconds = timeoutSeconds
        self.output = output
        self.webhook = webhook
    }

    package enum CodingKeys: String, CodingKey {
        case version, id, task, params, output, webhook
        case timeoutSeconds = "timeout_s"
    }
}

/// A cancel as clients publish it to the `genworker.cancel` fanout (docs/schemas/cancel.schema.json).
public struct CancelMessage: Codable, Sendable, Equatable {
    public var id: String
    public init(id: String) { self.id = id }

    /// The cancel a body holds; nil for anything else (a replay marker, garbage).
    public static func read(_ body: [UInt8]) -> CancelMessage? {
        guard body.count <= 4096, let message = try? ProtocolCoding.decode(CancelMessage.self, from: body),
            JobValidator.isValidID(message.id)
        else { return nil }
        return message
    }
}

/// The one JSON encoding of every message genworker writes: sorted keys, ISO 8601 dates,
/// unescaped slashes. An encoding failure is an error, never an empty body.
public enum ProtocolCoding {
    public static func encode<T: Encodable>(_ value: T) throws(GenWorkerError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(value)) } catch {
            throw GenWorkerError(.encoding, "cannot encode \(T.self): \(error)")
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: Data(body))
    }
}
