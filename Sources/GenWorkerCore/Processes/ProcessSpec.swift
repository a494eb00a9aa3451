/// How the supervisor treats a child. Defaults suit a Wan2.2 generate.py.
public struct SupervisorOptions: Sendable {
    /// Between SIGTERM and SIGKILL. torchrun needs about 30 s to stop its workers. Default 30 s.
    public var grace: Duration = .seconds(30)
    /// How often the supervisor looks at its deadlines when nothing happens. A stop request
    /// does not wait for it: it wakes the supervisor at once. Default 100 ms.
    public var pollInterval: Duration = .milliseconds(100)
    /// Lines of the child's output kept for the result. Default 50.
    public var logTailLines: Int = 50
    public init() {}

    public init(grace: Duration, pollInterval: Duration, logTailLines: Int) {
        self.grace = grace
        self.pollInterval = pollInterval
        self.logTailLines = logTailLines
    }
}

/// A program to run: never through a shell, so every argument arrives byte for byte.
public struct ProcessSpec: Sendable {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String?

    public init(executable: String, arguments: [String], environment: [String: String], workingDirectory: String? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }
}
