package org.rsnetedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.Test;

/** Parses tests/data/manifest_fixture.json, written by tests/data/make_manifest_fixture.py. */
public class ManifestTest {

  private static String fixtureText() {
    return TestData.read(TestData.file("manifest_fixture.json"));
  }

  private static JsonObject fixture() {
    return JsonParser.parseString(fixtureText()).getAsJsonObject();
  }

  private static void rejects(JsonObject d, String msg) {
    try {
      Manifest.fromJson(d);
      fail("accepted a manifest that should fail with: " + msg);
    } catch (ManifestException e) {
      assertTrue(e.getMessage() + " should mention " + msg, e.getMessage().contains(msg));
      assertFalse(e.getMessage().contains("\n"));
    }
  }

  @Test
  public void parsesThePythonWrittenFixture() {
    Manifest m = Manifest.fromJson(fixtureText());
    assertEquals("executorch", m.backend);
    assertEquals("mobilenet_v2", m.arch);
    assertEquals(1, m.schemaVersion);
    assertArrayEquals(new int[] {224, 192, 160, 128, 96}, m.resolutions());
    assertEquals(224, m.defaultResolution);
    assertEquals(10, m.classNames.size());
    assertEquals("airplane", m.classNames.get(0));
    assertEquals("forward_160", m.entryFor(160).entry);
    assertEquals(Manifest.entryName(96), m.entryFor(96).entry);
    assertEquals(0.875, m.input.cropPct, 0);
    assertArrayEquals(new float[] {0.485f, 0.456f, 0.406f}, m.input.mean, 0);
    assertArrayEquals(new float[] {0.229f, 0.224f, 0.225f}, m.input.std, 0);
    assertEquals("NCHW", m.input.layout);
    assertEquals("RGB", m.input.color);
    assertEquals(255.0, m.input.scale, 0);
    assertEquals(256, m.input.resizeSize(224));
    assertEquals(219, m.input.resizeSize(192));
    assertEquals("rs_mbv2.pte", m.artifactFile());
    assertEquals(64, m.artifactSha256().length());
    assertFalse(m.policyIsDefault);
    assertEquals(Policy.defaultPolicy(m.resolutions()), m.policy);
    assertTrue(m.entryFor(224).trained);
    assertEquals(Long.valueOf(300000000L), m.entryFor(224).madds);
    try {
      m.entryFor(100);
      fail();
    } catch (ManifestException e) {
      assertTrue(e.getMessage().contains("not served"));
    }
  }

  @Test
  public void missingPolicyMeansDefaultPolicy() {
    JsonObject d = fixture();
    d.remove("policy");
    Manifest m = Manifest.fromJson(d);
    assertTrue(m.policyIsDefault);
    assertEquals(Policy.defaultPolicy(new int[] {224, 192, 160, 128, 96}), m.policy);
    d.add("policy", new JsonObject());
    assertTrue(Manifest.fromJson(d).policyIsDefault);
  }

  @Test
  public void validationErrors() {
    JsonObject d;
    d = fixture(); d.addProperty("format", "other"); rejects(d, "not an rsnet-edge manifest");
    d = fixture(); d.addProperty("schema_version", 2); rejects(d, "newer");
    d = fixture(); d.remove("schema_version"); rejects(d, "schema_version");
    d = fixture(); d.remove("entries"); rejects(d, "missing 'entries'");
    d = fixture(); d.addProperty("backend", "tensorrt"); rejects(d, "unknown backend");
    d = fixture(); d.addProperty("weights", "other"); rejects(d, "manifest weights 'other' is not one of");
    d = fixture(); d.addProperty("dtype", "int4"); rejects(d, "manifest dtype 'int4' is not one of");
    d = fixture(); d.getAsJsonObject("input").add("mean", arr("[0.5, 0.5]")); rejects(d, "input.mean must be 3 numbers");
    d = fixture(); d.getAsJsonObject("input").add("std", arr("[0.5, 0, 0.5]")); rejects(d, "std must be positive");
    d = fixture(); d.getAsJsonObject("input").addProperty("crop_pct", 1.5); rejects(d, "crop_pct");
    d = fixture(); d.getAsJsonObject("input").addProperty("layout", "CHW"); rejects(d, "layout");
    d = fixture(); d.add("class_names", arr("[]")); rejects(d, "class_names");
    d = fixture(); d.add("entries", arr("[]")); rejects(d, "entries must be a non-empty list");
    d = fixture(); d.getAsJsonArray("entries").get(1).getAsJsonObject().addProperty("resolution", 224);
    rejects(d, "listed twice");
    d = fixture(); d.getAsJsonArray("entries").get(1).getAsJsonObject().addProperty("entry", "forward_224");
    rejects(d, "entry point forward_224 listed twice");
    d = fixture(); d.getAsJsonArray("entries").get(1).getAsJsonObject().addProperty("resolution", 256);
    rejects(d, "highest resolution first");
    d = fixture(); d.getAsJsonArray("entries").get(1).getAsJsonObject().addProperty("resolution", 192.0);
    rejects(d, "positive integer 'resolution'");
    d = fixture(); d.addProperty("default_resolution", 100); rejects(d, "default_resolution");
    d = fixture(); d.getAsJsonObject("policy").add("resolutions", arr("[224, 96]"));
    d.getAsJsonObject("policy").add("battery_levels", arr("[[50, 224], [0, 96]]"));
    rejects(d, "differ from the artifact");
    d = fixture(); d.getAsJsonObject("policy").addProperty("hysteresis_pct", 99);
    rejects(d, "manifest policy: policy hysteresis_pct");
    try {
      Manifest.fromJson("{not json");
      fail();
    } catch (ManifestException e) {
      assertTrue(e.getMessage().contains("not valid JSON"));
    }
  }

  @Test
  public void nonDefaultResolutionList() {
    JsonObject d = fixture();
    JsonArray entries = new JsonArray();
    for (int r : new int[] {256, 128}) {
      JsonObject e = new JsonObject();
      e.addProperty("resolution", r);
      e.addProperty("entry", Manifest.entryName(r));
      entries.add(e);
    }
    d.add("entries", entries);
    d.addProperty("default_resolution", 256);
    d.remove("policy");
    Manifest m = Manifest.fromJson(d);
    assertArrayEquals(new int[] {256, 128}, m.policy.resolutions());
    assertEquals(293, m.input.resizeSize(256)); // 292.57
  }

  private static JsonArray arr(String s) {
    return JsonParser.parseString(s).getAsJsonArray();
  }
}
