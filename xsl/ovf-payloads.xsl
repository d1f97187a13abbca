<?xml version="1.0" encoding="UTF-8"?>
<!--
  payloadhook: list the payloads an OVF carries, one line per file, never content.

  FOR TRUSTED DOCUMENTS ONLY. xsltproc (libxslt) expands a document's external
  entities, even with (nonet) and (novalid): an OVF downloaded from the internet can
  make it print local files or fetch URLs. For an OVF you did not write, use
      payloadhook ovf show FILE.ovf
  which reads it with the same hardened parser and the same rules as `ovf import`.

    xsltproc /usr/share/payloadhook/ovf-payloads.xsl appliance.ovf

  Output (tab-separated): type (from rasd:ResourceType: 15 cdrom, 14 floppy), target,
  volume id, size, SHA-256, path, and "content" or "no-content" for whether the OVF
  carries the file's bytes.

  It lists exactly what `payloadhook ovf import` reads:
  - the first hardware section in document order: an element named
    VirtualHardwareSection, or Section with an xsi:type ending in
    VirtualHardwareSection_Type (oVirt);
  - its Item children that hold SpecParams/vmPayload (the first of each);
  - of each such Item: rasd:ResourceType; of its vmPayload: the first volId and target;
  - of each file child of the vmPayload: the first path, size, sha256 and content.
  Elements other than rasd:* are matched by local name (oVirt's are unqualified,
  VMware-style OVFs put them in the envelope's namespace). See docs/ovf.md.
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <xsl:output method="text" encoding="UTF-8"/>

  <xsl:variable name="section" select="(//*[local-name()='VirtualHardwareSection' or
      (local-name()='Section' and
       substring(@xsi:type, string-length(@xsi:type) - 26) = 'VirtualHardwareSection_Type')])[1]"/>

  <xsl:template match="/">
    <xsl:for-each select="$section/*[local-name()='Item']">
      <xsl:variable name="payload"
                    select="*[local-name()='SpecParams'][1]/*[local-name()='vmPayload'][1]"/>
      <xsl:variable name="resource" select="normalize-space(rasd:ResourceType[1])"/>
      <xsl:for-each select="$payload/*[local-name()='file']">
        <xsl:choose>
          <xsl:when test="$resource = '15'">cdrom</xsl:when>
          <xsl:when test="$resource = '14'">floppy</xsl:when>
          <xsl:otherwise>invalid</xsl:otherwise>
        </xsl:choose>
        <xsl:text>&#9;</xsl:text>
        <xsl:value-of select="$payload/*[local-name()='target'][1]"/>
        <xsl:text>&#9;</xsl:text>
        <xsl:value-of select="$payload/*[local-name()='volId'][1]"/>
        <xsl:text>&#9;</xsl:text>
        <xsl:value-of select="*[local-name()='size'][1]"/>
        <xsl:text>&#9;</xsl:text>
        <xsl:value-of select="*[local-name()='sha256'][1]"/>
        <xsl:text>&#9;</xsl:text>
        <xsl:value-of select="*[local-name()='path'][1]"/>
        <xsl:text>&#9;</xsl:text>
        <xsl:choose>
          <xsl:when test="*[local-name()='content']">content</xsl:when>
          <xsl:otherwise>no-content</xsl:otherwise>
        </xsl:choose>
        <xsl:text>&#10;</xsl:text>
      </xsl:for-each>
    </xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
