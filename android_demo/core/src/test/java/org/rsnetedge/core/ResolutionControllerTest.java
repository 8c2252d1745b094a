package org.rsnetedge.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.fail;

import org.junit.Test;

public class ResolutionControllerTest {

  private static Manifest manifest() {
    return Manifest.fromJson(TestData.read(TestData.file("manifest_fixture.json")));
  }

  @Test
  public void eventsReapplyThePolicy() {
    ResolutionController c = new ResolutionController(manifest());
    assertEquals(224, c.resolution()); // default before any battery broadcast
    assertNull(c.effectiveBattery());
    assertEquals(192, c.onBattery(50, false));
    assertEquals("forward_192", c.entryName());
    assertEquals(96, c.onSimulatedBattery(10.0));
    assertEquals(192, c.onSimulatedBattery(null)); // back to the real 50 %, up needs 48
    assertEquals(128, c.onThermal("severe"));
    assertEquals(224, c.onOverride(224));
    assertEquals(128, c.policyResolution());
    assertEquals(128, c.onOverride(null));
    assertEquals(96, c.onThermalStatus(4));
    assertEquals("critical", c.thermal());
    assertEquals(192, c.onThermalStatus(0)); // 50 % -> 192 again
    // the first apply (first battery broadcast) is not a switch: 7 changes after it
    assertEquals(7, c.switchCount());
    try {
      c.onOverride(100);
      fail();
    } catch (ManifestException expected) {
      // ok
    }
    try {
      c.onThermalStatus(9);
      fail();
    } catch (PolicyException expected) {
      // ok
    }
    try {
      c.onBattery(120, false);
      fail();
    } catch (PolicyException expected) {
      // ok
    }
  }

  @Test
  public void simulatedBatteryTakesTheSamePathAsTheRealOne() {
    double[] levels = {100, 61, 58, 56, 62, 63, 40, 20, 9, 14, 30, 75};
    ResolutionController real = new ResolutionController(manifest());
    ResolutionController sim = new ResolutionController(manifest());
    sim.onBattery(100, false); // real level stays 100, the slider drives the policy
    Selector ref = new Selector(manifest().policy);
    for (double b : levels) {
      int a = real.onBattery(b, false);
      int s = sim.onSimulatedBattery(b);
      assertEquals(ref.select(b, false, "none"), a);
      assertEquals(a, s);
    }
    assertEquals(real.switchCount(), sim.switchCount());
  }

  @Test
  public void aFractionIsRefusedBeforeItIsStored() {
    ResolutionController c = new ResolutionController(manifest());
    assertEquals(192, c.onBattery(50, false));
    try {
      c.onBattery(0.5, false);
      fail();
    } catch (PolicyException e) {
      assertEquals(
          "battery_pct 0.5 looks like a fraction (iOS reports 0..1): pass a percentage 0..100, e.g. 50",
          e.getMessage());
    }
    try {
      c.onSimulatedBattery(0.25);
      fail();
    } catch (PolicyException expected) {
      // ok
    }
    assertEquals(Double.valueOf(50), c.effectiveBattery()); // nothing stored: later events apply
    assertEquals(128, c.onThermal("severe"));
    assertEquals(96, c.onBattery(1, false)); // 1 and 0 are percentages
  }

  @Test
  public void chargingLifts() {
    ResolutionController c = new ResolutionController(manifest());
    assertEquals(96, c.onBattery(5, false));
    assertEquals(224, c.onBattery(5, true));
    assertEquals(160, c.onThermal("moderate"));
  }
}
