/// A job as validated from a message: ready to run. Its parameters are typed values;
/// generate.py's command line is built from them in Wan/ (``WanCommand``).
public struct JobRequest: Sendable, Equatable {
    public var id: String
    public var task: WanTask
    /// The job's params, checked against the task's table, sorted by name.
    public var parameters: [JobParameter]
    public var timeout: Duration

    public init(id: String, task: WanTask, parameters: [JobParameter], timeout: Duration) {
        self.id = id
        self.task = task
        self.parameters = parameters
        self.timeout = timeout
    }

    /// The value of the param `name`, if the job set it.
    public func parameter(_ name: String) -> JobParameter.Value? { parameters.first { $0.name == name }?.value }
}

/// One validated param of a job.
public struct JobParameter: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case integer(Int64)
        case number(Double)
        case flag(Bool)
        /// An input file or directory, resolved (symlinks followed) under `inputs.roots`.
        case path(String)
    }

    public var name: String
    public var value: Value

    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }
}
