package org.rsnetedge.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.File;
import org.junit.Test;

/**
 * tests/data/bad_manifest_vectors.json, the same file tests/test_android_core.py checks against
 * rsnet_edge.manifest.validate: each case edits the Python-written fixture and expects the same
 * one-line error (or acceptance) from the Java reader.
 */
public class ManifestVectorsTest {
  @Test
  public void sharedManifestVectors() {
    File f = TestData.file("bad_manifest_vectors.json");
    JsonArray cases = JsonParser.parseString(TestData.read(f)).getAsJsonObject().getAsJsonArray("cases");
    String fixture = TestData.read(TestData.file("manifest_fixture.json"));
    int n = 0;
    for (JsonElement ce : cases) {
      JsonObject c = ce.getAsJsonObject();
      String name = c.get("name").getAsString();
      JsonObject d = JsonParser.parseString(fixture).getAsJsonObject();
      JsonArray path = c.getAsJsonArray("path");
      JsonElement node = d;
      for (int i = 0; i < path.size() - 1; i++) {
        JsonElement k = path.get(i);
        node = node.isJsonArray()
            ? node.getAsJsonArray().get(k.getAsInt())
            : node.getAsJsonObject().get(k.getAsString());
      }
      node.getAsJsonObject().add(path.get(path.size() - 1).getAsString(), c.get("value"));
      JsonElement want = c.get("error");
      try {
        Manifest.fromJson(d);
        if (!want.isJsonNull()) fail(f + ": case '" + name + "' accepted, expected: " + want.getAsString());
      } catch (ManifestException e) {
        if (want.isJsonNull()) fail(f + ": case '" + name + "' refused: " + e.getMessage());
        assertEquals(f + ": case '" + name + "'", want.getAsString(), e.getMessage());
      }
      n++;
    }
    System.out.println("ManifestVectorsTest: " + n + " cases from " + f);
  }

  /** "json_cases": raw texts (deep, long numbers, huge) refused with Python's line, no stack overflow. */
  @Test
  public void sharedJsonVectors() {
    File f = TestData.file("bad_manifest_vectors.json");
    JsonArray cases =
        JsonParser.parseString(TestData.read(f)).getAsJsonObject().getAsJsonArray("json_cases");
    int n = 0;
    for (JsonElement ce : cases) {
      JsonObject c = ce.getAsJsonObject();
      String name = c.get("name").getAsString();
      StringBuilder text = new StringBuilder();
      for (JsonElement part : c.getAsJsonArray("text")) {
        String piece = part.getAsJsonArray().get(0).getAsString();
        int times = part.getAsJsonArray().get(1).getAsInt();
        for (int i = 0; i < times; i++) text.append(piece);
      }
      String want = c.get("error").getAsString();
      try {
        Manifest.fromJson(text.toString());
        fail(f + ": json case '" + name + "' accepted, expected: " + want);
      } catch (ManifestException e) {
        assertEquals(f + ": json case '" + name + "'", want, e.getMessage());
      }
      n++;
    }
    System.out.println("ManifestVectorsTest: " + n + " json cases from " + f);
  }
}
