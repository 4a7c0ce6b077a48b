package org.dlprov.neo4j;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;

/**
 * Runs a Neo4j Community DBMS in this JVM with the Bolt connector on a loopback address.
 *
 * <p>Usage: {@code Main --data DIR [--port 7687] [--host 127.0.0.1] [--page-cache-mb 128]
 * [--no-auth] [--ready-fd N]}. Authentication is on by default: the built-in user {@code neo4j} gets the password
 * from the environment variable {@code NEO4J_PASSWORD} (or {@code --password PW}; the environment
 * keeps it out of the process list). DIR is the DBMS home (databases under DIR/data, Neo4j's logs
 * under DIR/logs). Once the default database is up and Bolt listens, {@code READY bolt://HOST:PORT}
 * is printed, and also written to the inherited file descriptor N of {@code --ready-fd} (a pipe the
 * launcher waits on), which is then closed; SIGTERM/SIGINT shut the DBMS down cleanly and print
 * {@code STOPPED}.
 */
public final class Main {
  private static final String USAGE =
      "usage: Main --data DIR [--port N] [--host H] [--password PW] [--page-cache-mb MB]"
          + " [--no-auth] [--ready-fd N]";

  private Main() {}

  public static void main(String[] args) throws Exception {
    String host = "127.0.0.1";
    int port = 7687;
    Path data = null;
    String password = System.getenv("NEO4J_PASSWORD");
    boolean auth = true;
    long pageCacheMb = 128;
    int readyFd = -1;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length && !a.equals("--no-auth")) {
        usage("missing value for " + a);
      }
      switch (a) {
        case "--host" -> host = args[++i];
        case "--port" -> port = Integer.parseInt(args[++i]);
        case "--data" -> data = Path.of(args[++i]);
        case "--password" -> password = args[++i];
        case "--page-cache-mb" -> pageCacheMb = Long.parseLong(args[++i]);
        case "--no-auth" -> auth = false;
        case "--ready-fd" -> readyFd = Integer.parseInt(args[++i]);
        default -> usage("unknown argument: " + a);
      }
    }
    if (data == null) {
      usage("--data DIR is required");
    }
    if (auth && (password == null || password.length() < 8)) {
      usage("NEO4J_PASSWORD (or --password) of at least 8 characters is required");
    }
    Path home = data.toAbsolutePath();
    Files.createDirectories(home);

    DatabaseManagementService dbms =
        new DatabaseManagementServiceBuilder(home)
            .setConfig(BoltConnector.enabled, true)
            .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
            .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
            .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
            // By default Bolt waits 5 s for connections and 5 s for its threads on shutdown.
            .setConfig(
                BoltConnectorInternalSettings.connection_shutdown_wait_time,
                Duration.ofSeconds(1))
            .setConfig(
                BoltConnectorInternalSettings.thread_pool_shutdown_wait_time,
                Duration.ofSeconds(1))
            .setConfig(HttpConnector.enabled, false)
            .setConfig(HttpsConnector.enabled, false)
            .setConfig(GraphDatabaseSettings.auth_enabled, auth)
            .setConfig(GraphDatabaseSettings.pagecache_memory, pageCacheMb * 1024L * 1024L)
            .build();

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    dbms.shutdown();
                    System.out.println("STOPPED");
                    System.out.flush();
                  } finally {
                    stopped.countDown();
                  }
                },
                "dlprov-neo4j-shutdown"));

    if (auth) {
      setPassword(dbms, password);
    }
    dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME).executeTransactionally("RETURN 1");
    String ready = "READY bolt://" + host + ":" + port;
    System.out.println(ready);
    System.out.flush();
    if (readyFd >= 0) {
      signalReady(readyFd, ready);
    }
    stopped.await();
  }

  /** Writes the READY line to the launcher's pipe (inherited as descriptor {@code fd}) and closes it. */
  private static void signalReady(int fd, String ready) throws IOException {
    try (FileOutputStream out = new FileOutputStream("/proc/self/fd/" + fd)) {
      out.write((ready + "\n").getBytes(StandardCharsets.UTF_8));
    }
  }

  private static void usage(String message) {
    System.err.println(message);
    System.err.println(USAGE);
    System.exit(2);
  }

  /** Sets the password of the built-in user {@code neo4j}; idempotent across restarts. */
  private static void setPassword(DatabaseManagementService dbms, String password) {
    GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
    try {
      system.executeTransactionally(
          "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
    } catch (RuntimeException e) {
      StringBuilder msg = new StringBuilder();
      for (Throwable c = e; c != null; c = c.getCause()) {
        msg.append(c.getMessage()).append(" / ");
      }
      // Restarted on an existing data directory: the password already is the requested one.
      if (!msg.toString().contains("Old password and new password cannot be the same")) {
        throw e;
      }
    }
  }
}
