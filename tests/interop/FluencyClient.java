// Sends the records of a JSON file ([[tag, record], ...]) to a Forward server with Fluency
// in ack response mode, then exits 0 once every chunk is acknowledged; any error reported
// by Fluency, or data still buffered after the deadline, exits 1.
//
// java -cp 'lib/*' FluencyClient.java <port> <records.json>

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.komamitsu.fluency.EventTime;
import org.komamitsu.fluency.Fluency;
import org.komamitsu.fluency.fluentd.FluencyBuilderForFluentd;

public class FluencyClient {
    private static final int DEADLINE_SECONDS = 60;

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: FluencyClient.java <port> <records.json>");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        List<List<Object>> records =
                new ObjectMapper().readValue(new File(args[1]), new TypeReference<List<List<Object>>>() {});

        List<Throwable> errors = new CopyOnWriteArrayList<>();
        FluencyBuilderForFluentd builder = new FluencyBuilderForFluentd();
        builder.setAckResponseMode(true);
        builder.setReadTimeoutMilli(20_000);
        builder.setConnectionTimeoutMilli(10_000);
        builder.setFlushAttemptIntervalMillis(200);
        builder.setSenderMaxRetryCount(0);
        builder.setWaitUntilBufferFlushed(DEADLINE_SECONDS);
        builder.setWaitUntilFlusherTerminated(10);
        builder.setErrorHandler(errors::add);
        Fluency fluency = builder.build("127.0.0.1", port);

        long started = System.nanoTime();
        for (int index = 0; index < records.size(); index++) {
            String tag = (String) records.get(index).get(0);
            @SuppressWarnings("unchecked")
            Map<String, Object> record = (Map<String, Object>) records.get(index).get(1);
            // Even records keep Fluency's default time (whole seconds), odd ones an EventTime.
            if (index % 2 == 1) {
                fluency.emit(tag, EventTime.fromEpochMilli(System.currentTimeMillis()), record);
            } else {
                fluency.emit(tag, record);
            }
            if (index % 50 == 49) {
                fluency.flush();
            }
        }
        fluency.flush();
        boolean flushed = fluency.waitUntilAllBufferFlushed(DEADLINE_SECONDS);
        fluency.close();
        boolean terminated = fluency.waitUntilFlusherTerminated(10);
        long elapsedMs = (System.nanoTime() - started) / 1_000_000;

        if (!errors.isEmpty() || !flushed || !terminated || fluency.getBufferedDataSize() != 0) {
            System.err.printf(
                    "fluency client: flushed=%s terminated=%s buffered=%d errors=%s%n",
                    flushed, terminated, fluency.getBufferedDataSize(), errors);
            System.exit(1);
        }
        System.out.printf(
                "fluency client: %d records acknowledged in %d ms%n", records.size(), elapsedMs);
    }
}
