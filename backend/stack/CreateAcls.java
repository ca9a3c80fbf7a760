// Creates ALLOW ACLs on a secured logdeck stack through Kafka's own admin client.
// Run by backend/stack/acls.py as a single-file source program (`java CreateAcls.java`):
// aiokafka speaks no CreateAcls version that Kafka 4 still serves.
// Arguments: a client properties file (the admin principal's). Standard input: one ACL a
// line, tab-separated: resource type, pattern type, resource name, principal, operation.

import java.io.BufferedReader;
import java.io.FileReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class CreateAcls {
    public static void main(String[] args) throws Exception {
        Properties properties = new Properties();
        try (FileReader file = new FileReader(args[0], StandardCharsets.UTF_8)) {
            properties.load(file);
        }
        List<AclBinding> bindings = new ArrayList<>();
        BufferedReader input =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = input.readLine(); line != null; line = input.readLine()) {
            if (line.isBlank()) {
                continue;
            }
            String[] field = line.split("\t", -1);
            bindings.add(new AclBinding(
                    new ResourcePattern(
                            ResourceType.valueOf(field[0]), field[2], PatternType.valueOf(field[1])),
                    new AccessControlEntry(
                            field[3], "*", AclOperation.valueOf(field[4]), AclPermissionType.ALLOW)));
        }
        try (Admin admin = Admin.create(properties)) {
            admin.createAcls(bindings).all().get(60, TimeUnit.SECONDS);
        }
        System.out.println(bindings.size() + " ACLs in place");
    }
}
