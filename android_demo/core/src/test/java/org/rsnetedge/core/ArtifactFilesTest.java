package org.rsnetedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** The app's start-up file logic (ModelRunner / MainActivity call these). */
public class ArtifactFilesTest {
  @Rule public TemporaryFolder tmp = new TemporaryFolder();

  @Test
  public void picksTheOneManifest() {
    assertEquals("m.pte.manifest.json",
        ArtifactFiles.pickManifest(new String[] {"samples", "m.pte", "m.pte.manifest.json"}));
    for (String[] bad : new String[][] {{"m.pte"}, {"a.manifest.json", "b.manifest.json"}, null}) {
      try {
        ArtifactFiles.pickManifest(bad);
        fail("picked from " + Arrays.toString(bad));
      } catch (IllegalArgumentException e) {
        assertTrue(e.getMessage(), e.getMessage().contains("copy_assets.sh"));
      }
    }
  }

  @Test
  public void copyIsCheckedAndAtomic() throws IOException {
    byte[] data = "program bytes".getBytes(StandardCharsets.UTF_8);
    // sha256("program bytes"), computed independently: printf 'program bytes' | sha256sum
    String sha = "d65a3f878bd10ea32143bb3168cf9747b1927b358b3da52dc4d616eebb40b7cc";
    String other = sha.replace('d', 'e');
    File dst = new File(tmp.getRoot(), "m.pte");
    try {
      ArtifactFiles.copyChecked(new ByteArrayInputStream(data), dst, other);
      fail("copied bytes whose sha256 differs from the manifest's");
    } catch (IOException e) {
      assertTrue(e.getMessage(), e.getMessage().startsWith("the manifest does not describe m.pte"));
    }
    assertEquals(0, tmp.getRoot().list().length); // nothing, not even a temp file
    ArtifactFiles.copyChecked(new ByteArrayInputStream(data), dst, sha);
    assertArrayEquals(data, Files.readAllBytes(dst.toPath()));
    assertEquals(sha, FoldUnpacker.sha256(dst));
    assertTrue(ArtifactFiles.isFresh(dst, sha));
    assertTrue(ArtifactFiles.isFresh(dst, null));
    assertFalse(ArtifactFiles.isFresh(dst, other));
    assertFalse(ArtifactFiles.isFresh(new File(tmp.getRoot(), "missing"), null));
    assertEquals(1, tmp.getRoot().list().length);
  }

  @Test
  public void artifactNameMustBeAPlainFileName() {
    com.google.gson.JsonObject d = com.google.gson.JsonParser.parseString(
        TestData.read(TestData.file("manifest_fixture.json"))).getAsJsonObject();
    assertEquals("rs_mbv2.pte", ArtifactFiles.artifactName(Manifest.fromJson(d)));
    for (String bad : new String[] {"../x.pte", "a/b.pte", ".hidden.pte", ""}) {
      d.getAsJsonObject("artifact").addProperty("file", bad);
      try {
        ArtifactFiles.artifactName(Manifest.fromJson(d));
        fail("accepted artifact.file " + bad);
      } catch (IllegalArgumentException e) {
        assertTrue(e.getMessage(), e.getMessage().startsWith("the manifest records no usable artifact.file"));
      }
    }
  }

  @Test
  public void entriesAgainstMethods() {
    Manifest m = Manifest.fromJson(TestData.read(TestData.file("manifest_fixture.json")));
    assertTrue(ArtifactFiles.missingMethods(m, new String[] {"forward", "forward_224", "forward_192",
        "forward_160", "forward_128", "forward_96"}).isEmpty());
    String[] methods = {"forward", "forward_64", "forward_48"};
    assertEquals(Arrays.asList("forward_224", "forward_192", "forward_160", "forward_128", "forward_96"),
        ArtifactFiles.missingMethods(m, methods));
    assertEquals("the manifest does not match m.pte: it lists [forward_224] but the program's "
        + "methods are [forward, forward_48, forward_64]",
        ArtifactFiles.mismatchMessage("m.pte", Arrays.asList("forward_224"), methods));
  }
}
